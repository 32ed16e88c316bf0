package tokenize_test

import (
	"crypto/hmac"
	"crypto/sha256"
	"errors"
	"fmt"
	"strings"
	"sync"
	"testing"

	"github.com/shopsphere/shardflow/internal/registry"
	"github.com/shopsphere/shardflow/internal/tokenize"
)

var keys = map[string]string{
	"k1": "test-tokenizer-key-0123456789abcdef",
	"k2": strings.Repeat("a", 32),
}

// vectors pin the landed form byte for byte: they were produced by the stopgap (removed)
// tokenizer the first landed files and dbt fixtures were written with, and the k1
// card_number token was recomputed independently (Python's hmac module). A change
// here is a change to every token already landed.
var vectors = []struct {
	keyID, column string
	policy        registry.PCIPolicy
	value, want   string
}{
	{"k1", "card_number", "token", "4111111111111111", "tok_k1_EQfI6FlmOkq3gZ3U7xTGiA"},
	{"k1", "card_number", "token", " 4111111111111111 ", "tok_k1_EQfI6FlmOkq3gZ3U7xTGiA"},
	{"k1", "card_number", "token", "\t4111111111111111\n", "tok_k1_EQfI6FlmOkq3gZ3U7xTGiA"},
	{"k1", "card_number", "token", "5500000000000004", "tok_k1_OC9XtwTo4LKt3dnx77U9yQ"},
	{"k1", "card_holder", "token", "4111111111111111", "tok_k1_dNx1XGGGUuVKO_yqIP2BiA"},
	{"k1", "card_holder", "token", "Ada Lovelace", "tok_k1_1_um-OtdjUjHM31yb_VEKg"},
	{"k1", "card_holder", "token", "", "tok_k1_NleRWMqYlOx8YlsMRc6XEw"},
	{"k1", "card_holder", "token", "Zoë Ñandú", "tok_k1_6FbrsL6FgKnjYsBC-U0FFA"},
	{"k1", "card_last4", "last4", "4111 1111 1111 1234", "1234"},
	{"k1", "card_number", "bin", "4111-1111-1111-1234", "411111"},
	{"k2", "card_number", "token", "4111111111111111", "tok_k2_w6e_IIjCAQK3ITug-QAq1w"},
	{"k2", "card_number", "token", "5500000000000004", "tok_k2_3lYwcLJh0fNAVm7tnyX3Wg"},
	{"k2", "card_holder", "token", "4111111111111111", "tok_k2_W8OMUx0fUUAD_k2HaNEPYQ"},
	{"k2", "card_holder", "token", "Ada Lovelace", "tok_k2_V7wyWLmx83ShfUbkXGKkfA"},
	{"k2", "card_holder", "token", "", "tok_k2_khysFNypBZjRABKgUedzUw"},
	{"k2", "card_holder", "token", "Zoë Ñandú", "tok_k2_uZG1JaKoZyI5LKPdcsbbMA"},
	{"k2", "card_last4", "last4", "4111 1111 1111 1234", "1234"},
	{"k2", "card_number", "bin", "4111-1111-1111-1234", "411111"},
}

func tokenizer(t testing.TB, id string) *tokenize.Tokenizer {
	t.Helper()
	tk, err := tokenize.New(id, []byte(keys[id]))
	if err != nil {
		t.Fatal(err)
	}
	return tk
}

func TestVectors(t *testing.T) {
	for _, v := range vectors {
		got, err := tokenizer(t, v.keyID).Apply(registry.Column{Name: v.column, PCI: v.policy}, v.value)
		if err != nil || got != v.want {
			t.Errorf("%s %s(%s): %q %v, want %q", v.keyID, v.policy, v.column, got, err, v.want)
		}
	}
}

// TestFormula recomputes tokens from the contract's formula with the standard library.
func TestFormula(t *testing.T) {
	tk := tokenizer(t, "k1")
	for i := range 200 {
		col, val := fmt.Sprintf("c%d", i%3), fmt.Sprintf("  %016d ", i*7919)
		m := hmac.New(sha256.New, []byte(keys["k1"]))
		m.Write([]byte(col + "\x00" + strings.TrimSpace(val)))
		want := "tok_k1_" + b64(m.Sum(nil)[:16])
		if got := tk.Token(col, val); got != want {
			t.Fatalf("Token(%s, #%d) = %s, want %s", col, i, got, want)
		}
	}
}

func TestTokensDependOnKeyKeyIDAndColumn(t *testing.T) {
	pan := "4111111111111111"
	a, b := tokenizer(t, "k1"), tokenizer(t, "k2")
	sameKeyOtherID, err := tokenize.New("k9", []byte(keys["k1"]))
	if err != nil {
		t.Fatal(err)
	}
	seen := map[string]string{}
	for name, tok := range map[string]string{
		"k1 card_number": a.Token("card_number", pan),
		"k2 card_number": b.Token("card_number", pan),
		"k1 card_holder": a.Token("card_holder", pan),
		"k9 card_number": sameKeyOtherID.Token("card_number", pan),
	} {
		if prev, ok := seen[tok]; ok {
			t.Errorf("%s and %s give the same token", prev, name)
		}
		seen[tok] = name
		if strings.Contains(tok, pan) || strings.Contains(tok, pan[6:]) {
			t.Errorf("%s: token %s contains the value", name, tok)
		}
	}
	// same key material, other key id: only the id differs (the MAC is the key's)
	if x, y := a.Token("card_number", pan), sameKeyOtherID.Token("card_number", pan); x[len("tok_k1_"):] != y[len("tok_k9_"):] {
		t.Errorf("%s / %s: the MAC part must depend on the key only", x, y)
	}
	if a.KeyID() != "k1" {
		t.Errorf("KeyID = %q", a.KeyID())
	}
}

func TestNewRefuses(t *testing.T) {
	for _, c := range []struct {
		id, key string
		want    error
	}{
		{"k1", strings.Repeat("x", 31), tokenize.ErrShortKey},
		{"k1", "", tokenize.ErrShortKey},
		{"", keys["k1"], tokenize.ErrKeyID},
		{"K1", keys["k1"], tokenize.ErrKeyID},
		{"k_1", keys["k1"], tokenize.ErrKeyID}, // "_" would make tokens ambiguous
		{"k12345678901234567", keys["k1"], tokenize.ErrKeyID},
	} {
		_, err := tokenize.New(c.id, []byte(c.key))
		if !errors.Is(err, c.want) {
			t.Errorf("New(%q, %d bytes) = %v, want %v", c.id, len(c.key), err, c.want)
		}
		if err != nil && c.key != "" && strings.Contains(err.Error(), c.key) {
			t.Errorf("error contains the key: %v", err)
		}
	}
	key := []byte(keys["k1"])
	tk, _ := tokenize.New("k1", key)
	before := tk.Token("c", "v")
	key[0] ^= 0xff // the caller's slice is not kept
	if tk.Token("c", "v") != before {
		t.Error("tokenizer changed when the caller's key slice changed")
	}
}

func TestErrorsNeverHoldTheValue(t *testing.T) {
	tk := tokenizer(t, "k1")
	for _, c := range []struct {
		col   registry.Column
		value string
		want  error
	}{
		{registry.Column{Name: "card_last4", PCI: registry.PCILast4}, "12x", tokenize.ErrFewerDigits},
		{registry.Column{Name: "card_number", PCI: registry.PCIBIN}, "41111", tokenize.ErrFewerDigits},
		{registry.Column{Name: "card_cvv", PCI: registry.PCIDrop}, "737", tokenize.ErrDrop},
		{registry.Column{Name: "status", PCI: registry.PCIKeep}, "4111111111111111", tokenize.ErrNotPCI},
		{registry.Column{Name: "status"}, "4111111111111111", tokenize.ErrNotPCI},
	} {
		got, err := tk.Apply(c.col, c.value)
		if !errors.Is(err, c.want) || got != "" {
			t.Errorf("Apply(%s %s) = %q, %v; want %v", c.col.Name, c.col.PCI, got, err, c.want)
			continue
		}
		if strings.Contains(err.Error(), c.value) {
			t.Errorf("error %q contains the value", err)
		}
		if !strings.Contains(err.Error(), c.col.Name) {
			t.Errorf("error %q does not name the column", err)
		}
	}
}

func TestConcurrentUse(t *testing.T) {
	tk := tokenizer(t, "k1")
	want := tk.Token("card_number", "4111111111111111")
	var wg sync.WaitGroup
	errs := make(chan string, 8)
	for g := range 8 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range 2000 {
				v := fmt.Sprintf("%016d", g*100000+i)
				if a, b := tk.Token("card_number", v), tk.Token("card_number", v); a != b {
					errs <- "unequal tokens under concurrency"
					return
				}
				if got := tk.Token("card_number", "4111111111111111"); got != want {
					errs <- "token changed under concurrency"
					return
				}
			}
		}()
	}
	wg.Wait()
	close(errs)
	for e := range errs {
		t.Fatal(e)
	}
}

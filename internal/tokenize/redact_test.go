package tokenize_test

import (
	"errors"
	"math/rand/v2"
	"strings"
	"testing"

	"github.com/shopsphere/shardflow/internal/dq"
	"github.com/shopsphere/shardflow/internal/registry"
	"github.com/shopsphere/shardflow/internal/tokenize"
	"github.com/shopsphere/shardflow/internal/workload"
)

// TestRedactIsASupersetOfTheLeakScan: whatever dq's leak scan would count as a card
// number, redaction replaced, on random texts built of digits, separators and letters,
// with card numbers typed into them in every format the generator uses; and every such
// card number is gone from the result.
func TestRedactIsASupersetOfTheLeakScan(t *testing.T) {
	tk, err := tokenize.New("k1", []byte(strings.Repeat("r", 32)))
	if err != nil {
		t.Fatal(err)
	}
	r := rand.New(rand.NewPCG(1, 2))
	const alphabet = "0123456789      ---...ab/_"
	pans := []string{"4111111111111111", "5555555555554444", "378282246310005", "6011111111111117", "3530111333300000"}
	for i := range 20000 {
		var b strings.Builder
		var typed []string
		for range 1 + r.IntN(6) {
			for range r.IntN(12) {
				b.WriteByte(alphabet[r.IntN(len(alphabet))])
			}
			if r.IntN(3) == 0 {
				b.WriteString(" ")
				pan := workload.FormatPAN(pans[r.IntN(len(pans))], r.IntN(5))
				typed = append(typed, pan)
				b.WriteString(pan)
				b.WriteString(" ")
			}
		}
		text := b.String()
		out, _ := tk.Redact("note", text)
		if n := dq.CountPANs(out); n > 0 {
			t.Fatalf("case %d: the leak scan finds %d card numbers after redaction", i, n)
		}
		for _, pan := range typed {
			if strings.Contains(out, pan) {
				t.Fatalf("case %d: a typed card number survived redaction", i)
			}
		}
		if len(typed) == 0 && dq.CountPANs(text) == 0 && len(tokenize.FindPANs(text)) == 0 && out != text {
			t.Fatalf("case %d: text without a card number changed", i)
		}
	}
}

// TestRedactKeepsTheText: only the card numbers change; their tokens are those of
// their digits in the column.
func TestRedactKeepsTheText(t *testing.T) {
	tk, _ := tokenize.New("k1", []byte(strings.Repeat("r", 32)))
	out, n := tk.Redact("note", "gift for mum — card 4111-1111-1111-1111, order 2026-000123456")
	want := "gift for mum — card " + tk.Token("note", "4111111111111111") + ", order 2026-000123456"
	if out != want || n != 1 {
		t.Errorf("Redact = %q (%d), want %q (1)", out, n, want)
	}
}

func TestKeyIDOf(t *testing.T) {
	tk, _ := tokenize.New("k12", []byte(strings.Repeat("r", 32)))
	if id, ok := tokenize.KeyIDOf(tk.Token("card_number", "4111111111111111")); id != "k12" || !ok {
		t.Errorf("KeyIDOf(a k12 token) = %q, %v", id, ok)
	}
	for _, v := range []string{"", "tok_", "tok__abcdefghijklmnopqrstuv", "4111111111111111", "tok_k1_short", "Tok_k1_abcdefghijklmnopqrstuv"} {
		if id, ok := tokenize.KeyIDOf(v); ok {
			t.Errorf("KeyIDOf(%q) = %q, true", v, id)
		}
	}
}

// TestVerifierTokenShape: the verifier takes exactly tok_<id>_<22 base64url characters>,
// id 1-16 of [a-z0-9], and nothing else shaped nearly like it.
func TestVerifierTokenShape(t *testing.T) {
	tk, _ := tokenize.New("k1", []byte(strings.Repeat("r", 32)))
	col := registry.Column{Name: "card_number", Type: "text", PCI: registry.PCIToken}
	good := tk.Token("card_number", "4111111111111111")
	if got, err := (tokenize.Verifier{}).Apply(col, good); err != nil || got != good {
		t.Fatalf("Verifier on a token: %q, %v", got, err)
	}
	for _, bad := range []string{"tok_K1_" + good[7:], "tok_k1_" + good[7:28] + "!", "tok_k1_" + good[7:28], "tok_" + strings.Repeat("a", 17) + "_" + good[7:],
		"tok_k1_" + good[7:] + "x", "4111111111111111", "tok_k1_abcdefghijklmnopqrst\u00e9"} {
		if _, err := (tokenize.Verifier{}).Apply(col, bad); !errors.Is(err, tokenize.ErrNotTokenized) {
			t.Errorf("Verifier took %q: %v", bad, err)
		}
	}
}

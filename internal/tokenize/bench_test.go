package tokenize_test

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/base64"
	"fmt"
	"testing"

	"github.com/shopsphere/shardflow/internal/registry"
)

func b64(b []byte) string { return base64.RawURLEncoding.EncodeToString(b) }

// benchValues are 4096 PAN-shaped values (not Luhn-checked: the rate does not depend on it).
var benchValues = func() []string {
	v := make([]string, 4096)
	for i := range v {
		v[i] = fmt.Sprintf("4%015d", uint64(i)*2654435761%1_000_000_000_000_000)
	}
	return v
}()

// BenchmarkTokenize reports values/s of each policy beside two references over the same
// inputs, measured in the same run: a bare HMAC-SHA256 (one reused keyed hash, Reset,
// Write, Sum: the floor of the token policy) and a bare SHA-256 of the value.
// `make bench-tokenize` runs it.
func BenchmarkTokenize(b *testing.B) {
	tk := tokenizer(b, "k1")
	run := func(name string, f func(v string)) {
		b.Run(name, func(b *testing.B) {
			b.ReportAllocs()
			for i := 0; b.Loop(); i++ {
				f(benchValues[i%len(benchValues)])
			}
			b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "values/s")
		})
	}
	var sink string
	num := registry.Column{Name: "card_number", PCI: registry.PCIToken}
	run("token", func(v string) { sink, _ = tk.Apply(num, v) })
	run("last4", func(v string) { sink, _ = tk.Apply(registry.Column{Name: "card_last4", PCI: registry.PCILast4}, v) })
	run("bin", func(v string) { sink, _ = tk.Apply(registry.Column{Name: "card_number", PCI: registry.PCIBIN}, v) })
	// redact: an ordinary note (scanned, unchanged) and one with a card number typed in it
	note := registry.Column{Name: "note", PCI: registry.PCIRedact}
	run("redact-plain-note", func(string) {
		sink, _ = tk.Apply(note, "please leave the parcel at the back door, call +1 415-555-0100")
	})
	run("redact-note-with-card", func(string) { sink, _ = tk.Apply(note, "my card is 4111 1111 1111 1111, call +1 415-555-0100") })
	mac := hmac.New(sha256.New, []byte(keys["k1"]))
	var sum []byte
	run("reference-hmac-sha256", func(v string) {
		mac.Reset()
		mac.Write([]byte("card_number\x00" + v))
		sum = mac.Sum(sum[:0])
	})
	run("reference-sha256", func(v string) {
		s := sha256.Sum256([]byte(v))
		sum = s[:]
	})
	_, _ = sink, sum
}

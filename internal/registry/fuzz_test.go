package registry

import (
	"os"
	"strings"
	"testing"
	"time"
)

// FuzzCheck: the parser and validator never panic, whatever the bytes.
func FuzzCheck(f *testing.F) {
	for _, p := range []string{"../../shards.yaml", "testdata/bad-four.yaml"} {
		b, err := os.ReadFile(p)
		if err != nil {
			f.Fatal(err)
		}
		f.Add(string(b))
	}
	f.Add(base + moves)
	f.Add("shards: [{buckets: ['0-99999999']}]")
	f.Fuzz(func(t *testing.T, text string) {
		r, err := Check(strings.NewReader(text))
		if err == nil {
			// a valid registry answers ownership questions for every bucket
			for b := 0; b < r.Routing.Buckets; b += 1 + r.Routing.Buckets/64 {
				r.OwnerAt(b, time.Now())
				r.OwnerAt(b, time.Time{})
			}
		}
	})
}

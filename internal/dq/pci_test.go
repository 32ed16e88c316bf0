package dq

import "testing"

func TestCountPANs(t *testing.T) {
	cases := []struct {
		in   string
		want int
	}{
		{"4111111111111111", 1},
		{"card 4111111111111111 charged", 1},
		{"4111 1111 1111 1111", 1},
		{"4111-1111-1111-1111", 1},
		{"378282246310005", 1},                      // amex, 15 digits
		{"3782-822463-10005", 1},                    // amex grouping 4-6-5
		{"4111111111111112", 0},                     // Luhn fails
		{"411111111111", 0},                         // 12 digits
		{"41111111111111111111", 0},                 // 20 digits
		{"x4111111111111111", 0},                    // glued to a letter: not a standalone number
		{"4111111111111111a", 0},                    // same
		{"12345678-1234-5678-9012-345678901234", 0}, // uuid-shaped: 8-digit group
		{"tok_k1_AbC-dEf_gh", 0},
		{"a 5555555555554444 and 4012888888881881", 2},
		{"", 0},
		{"4111111111111111\x004111111111111111", 2},
	}
	for _, c := range cases {
		if got := CountPANs(c.in); got != c.want {
			t.Errorf("CountPANs(%q) = %d, want %d", c.in, got, c.want)
		}
	}
}

func TestLuhn(t *testing.T) {
	for _, ok := range []string{"4111111111111111", "5555555555554444", "79927398713"} {
		if !Luhn(ok) {
			t.Errorf("Luhn(%s) = false", ok)
		}
	}
	for _, bad := range []string{"4111111111111112", "79927398710", "abc", "0"} {
		if Luhn(bad) {
			t.Errorf("Luhn(%s) = true", bad)
		}
	}
}

func FuzzCountPANs(f *testing.F) {
	f.Add("4111 1111 1111 1111")
	f.Fuzz(func(t *testing.T, s string) {
		if n := CountPANs(s); n < 0 || n > len(s)/13+1 {
			t.Fatalf("CountPANs(%q) = %d", s, n)
		}
	})
}

package workload

import (
	"fmt"
	"math/rand/v2"

	"github.com/shopsphere/shardflow/internal/tokenize"
)

// testBIN is a well-known test card range: the issuer networks and payment processors
// publish these for testing; no real card has them.
type testBIN struct {
	prefix string
	length int // PAN length
	cvvLen int
}

// testBINs are the ranges PANs are drawn from (Visa, Mastercard 5- and 2-series, Amex,
// Discover, JCB test ranges).
var testBINs = []testBIN{
	{"411111", 16, 3}, // Visa
	{"424242", 16, 3}, // Visa
	{"400005", 16, 3}, // Visa debit
	{"555555", 16, 3}, // Mastercard
	{"510510", 16, 3}, // Mastercard
	{"222300", 16, 3}, // Mastercard 2-series
	{"378282", 15, 4}, // American Express
	{"601111", 16, 3}, // Discover
	{"353011", 16, 3}, // JCB
}

// Card is a payment card of a customer. Its fields are PCI data: never print, log or
// put them in an error.
type Card struct {
	Number string // Luhn-valid PAN from a test BIN
	Holder string
	Expiry string // MM/YY
	CVV    string
}

// Last4 returns the last four digits of the PAN.
func (c Card) Last4() string { return c.Number[len(c.Number)-4:] }

// String hides the card: fmt never prints PCI data by accident.
func (c Card) String() string { return "card(****" + c.Last4() + ")" }

// GoString hides the card from %#v too.
func (c Card) GoString() string { return c.String() }

// newCard draws a card from r.
func newCard(r *rand.Rand, holder string) Card {
	bin := testBINs[r.IntN(len(testBINs))]
	digits := []byte(bin.prefix)
	for len(digits) < bin.length-1 {
		digits = append(digits, byte('0'+r.IntN(10)))
	}
	digits = append(digits, luhnCheckDigit(digits))
	cvv := make([]byte, bin.cvvLen)
	for i := range cvv {
		cvv[i] = byte('0' + r.IntN(10))
	}
	return Card{
		Number: string(digits),
		Holder: holder,
		Expiry: fmt.Sprintf("%02d/%02d", 1+r.IntN(12), 27+r.IntN(6)),
		CVV:    string(cvv),
	}
}

// luhnCheckDigit returns the digit that makes payload+digit pass the Luhn check.
func luhnCheckDigit(payload []byte) byte {
	sum := 0
	double := true // the check digit's neighbour is doubled
	for i := len(payload) - 1; i >= 0; i-- {
		d := int(payload[i] - '0')
		if double {
			d *= 2
			if d > 9 {
				d -= 9
			}
		}
		sum += d
		double = !double
	}
	return byte('0' + (10-sum%10)%10)
}

// LuhnValid reports whether s is a string of digits that passes the Luhn check.
func LuhnValid(s string) bool {
	if len(s) < 2 {
		return false
	}
	for i := 0; i < len(s); i++ {
		if s[i] < '0' || s[i] > '9' {
			return false
		}
	}
	return tokenize.Luhn([]byte(s))
}

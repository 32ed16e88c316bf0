package workload

import (
	"fmt"
	"math/rand/v2"
	"strings"
)

// Order notes: the free text a customer types at checkout (orders.note, policy redact
// in shards.yaml). Most orders have none; some carry ordinary text with digit runs that
// are not card numbers (order references, phone numbers, door codes); some carry the
// customer's own card number, typed in one of the ways people type it. The redaction on
// both paths must replace those, and only those (docs/pci.md).

// The shares of new orders by note: none, ordinary text; the rest carry a card number.
const (
	noteNone  = 0.70
	notePlain = 0.22
)

var plainNotes = []string{
	"please leave the parcel at the back door",
	"gift wrap please, it's a birthday present",
	"call me on +1 415-555-%04d when you arrive",
	"door code %04d, third floor",
	"re: order ORD-2026-%09d, same address as last time",
	"deliver after 6pm, tel 020 7946 %04d",
	"tracking ref %012d please",
	"Geschenk – bitte ohne Rechnung 🙂",
}

var panNotes = []string{
	"my card is %s",
	"please charge %s instead of the card on file",
	"card: %s exp next year",
	"use %s for the next order too",
	"Karte %s bitte",
}

// note returns the note of a new order of customer c (nil: none). r is the notes' own
// stream, so notes never change the rest of a seed's sequence.
func note(r *rand.Rand, c Card) *string {
	f := r.Float64()
	var s string
	switch {
	case f < noteNone:
		return nil
	case f < noteNone+notePlain:
		s = plainNotes[r.IntN(len(plainNotes))]
		if strings.Contains(s, "%") {
			s = fmt.Sprintf(s, r.Int64N(1_000_000_000))
		}
	default:
		s = fmt.Sprintf(panNotes[r.IntN(len(panNotes))], FormatPAN(c.Number, r.IntN(len(panFormats))))
	}
	return &s
}

// panFormats are the ways a PAN is typed: digits only, in print groups (4-4-4-4, or
// 4-6-5 for 15 digits) separated by a space, a dash, a dot or " - ".
var panFormats = []string{"", " ", "-", ".", " - "}

// FormatPAN writes pan the way format i of panFormats types it.
func FormatPAN(pan string, i int) string {
	sep := panFormats[i%len(panFormats)]
	if sep == "" {
		return pan
	}
	groups := []int{4, 4, 4, 4}
	if len(pan) == 15 {
		groups = []int{4, 6, 5}
	}
	var b strings.Builder
	at := 0
	for k, n := range groups {
		if k > 0 {
			b.WriteString(sep)
		}
		end := min(at+n, len(pan))
		b.WriteString(pan[at:end])
		at = end
	}
	b.WriteString(pan[at:])
	return b.String()
}

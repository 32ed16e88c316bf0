package tokenize

// Redaction of free text (policy redact, docs/pci.md): card numbers people type into a
// note or a gift message are replaced in place by their token, the rest of the text is
// kept as typed. The Kafka Connect transform (docker/connect/tokenize) implements the
// same rule; the pinned vectors in test/vectors/tokenize.json hold both to it.
//
// The rule, on ASCII digits only:
//
//   - a group is a maximal run of digits; groups separated by one to three characters of
//     space, dash and dot form a chain ("4111 1111 1111 1111", "3782-822463-10005",
//     "4111.1111.1111.1111", "3782 - 822463 - 10005");
//   - within a chain, from each group on (left to right), the longest span of whole
//     groups with 13 to 19 digits in all that passes the Luhn check is a card number,
//     provided that a span of more than one group has no group longer than 6 digits
//     (cards are printed in groups of 4 to 6); it is replaced by
//     Token(column, its digits without separators) and the search goes on after it;
//   - letters or punctuation next to a span do not matter ("card:4111111111111111",
//     "cc4111111111111111" are redacted): a false positive costs a token in a note, a
//     false negative a card number in the warehouse.
//
// It is a superset of dq's leak scan (dq.CountPANs): whatever the scan would count is
// redacted, so redacted text always passes it. Digit runs longer than 19 digits, and
// shorter than 13, are left alone, as are 13-19 digit runs that fail the Luhn check
// (order numbers, phone numbers, tracking numbers, most of the time).

// Redact returns text with every card number replaced by its token (the token of its
// digits in column), and how many it replaced.
func (t *Tokenizer) Redact(column, text string) (string, int) {
	spans := FindPANs(text)
	if len(spans) == 0 {
		return text, 0
	}
	out := make([]byte, 0, len(text)+len(spans)*16)
	prev := 0
	for _, s := range spans {
		out = append(out, text[prev:s.Start]...)
		out = append(out, t.Token(column, s.Digits(text))...)
		prev = s.End
	}
	out = append(out, text[prev:]...)
	return string(out), len(spans)
}

// Span is a card number found in a text: text[Start:End], separators included.
type Span struct{ Start, End int }

// Digits is the span's digits without separators.
func (s Span) Digits(text string) string {
	d := make([]byte, 0, 19)
	for i := s.Start; i < s.End; i++ {
		if isDigit(text[i]) {
			d = append(d, text[i])
		}
	}
	return string(d)
}

// group is one maximal run of digits, text[start:end].
type group struct{ start, end int }

// FindPANs returns the card numbers in text, in order, by the rule above. It never
// returns an error nor keeps the text.
func FindPANs(text string) []Span {
	var out []Span
	var buf [8]group // most texts have few digit groups: no allocation for them
	chain := buf[:0]
	flush := func() {
		out = appendChainPANs(out, text, chain)
		chain = chain[:0]
	}
	for i := 0; i < len(text); {
		if !isDigit(text[i]) {
			i++
			continue
		}
		j := i
		for j < len(text) && isDigit(text[j]) {
			j++
		}
		// a group joins the chain when one to three separators part it from the last
		if n := len(chain); n > 0 && !separated(text[chain[n-1].end:i]) {
			flush()
		}
		chain = append(chain, group{i, j})
		i = j
	}
	flush()
	return out
}

// separated reports whether gap, the text between two groups, joins them: one to three
// characters, each a space, a dash or a dot.
func separated(gap string) bool {
	if len(gap) == 0 || len(gap) > 3 {
		return false
	}
	for i := 0; i < len(gap); i++ {
		if c := gap[i]; c != ' ' && c != '-' && c != '.' {
			return false
		}
	}
	return true
}

// appendChainPANs appends the card numbers of one chain of groups.
func appendChainPANs(out []Span, text string, chain []group) []Span {
	for i := 0; i < len(chain); {
		best := -1
		n := 0
		var buf [19]byte
		digits := buf[:0]
		for j := i; j < len(chain); j++ {
			g := chain[j]
			if j > i && (chain[i].end-chain[i].start > 6 || g.end-g.start > 6) {
				break // a span of several groups has groups of at most 6 digits
			}
			n += g.end - g.start
			if n > 19 {
				break
			}
			digits = append(digits, text[g.start:g.end]...)
			if n >= 13 && Luhn(digits) {
				best = j
			}
		}
		if best < 0 {
			i++
			continue
		}
		out = append(out, Span{Start: chain[i].start, End: chain[best].end})
		i = best + 1
	}
	return out
}

// Luhn reports whether d, ASCII digits, passes the Luhn check (the card-number check
// digit). The caller makes sure d holds only digits.
func Luhn(d []byte) bool {
	sum, dbl := 0, false
	for i := len(d) - 1; i >= 0; i-- {
		v := int(d[i] - '0')
		if dbl {
			v *= 2
			if v > 9 {
				v -= 9
			}
		}
		sum += v
		dbl = !dbl
	}
	return sum%10 == 0
}

func isDigit(c byte) bool { return c >= '0' && c <= '9' }

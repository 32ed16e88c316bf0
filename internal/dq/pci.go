package dq

import "github.com/shopsphere/shardflow/internal/tokenize"

// CountPANs counts the card-number-like values in s: maximal runs of digits, optionally
// grouped by single spaces or dashes (groups of at most 6 digits, as cards are printed),
// not touching a letter or digit on either side, with 13 to 19 digits in all and a valid
// Luhn check digit. It never returns the values themselves.
func CountPANs(s string) int {
	n := 0
	for i := 0; i < len(s); {
		if !isDigit(s[i]) {
			i++
			continue
		}
		// s[i] starts a run (the byte before it is not a digit: we skip whole runs)
		start := i
		var digits [24]byte
		nd, group, maxGroup, sep := 0, 0, 0, false
		j := i
		for j < len(s) {
			c := s[j]
			if isDigit(c) {
				if nd < len(digits) {
					digits[nd] = c
				}
				nd++
				group++
				if group > maxGroup {
					maxGroup = group
				}
				j++
				continue
			}
			if (c == ' ' || c == '-') && j+1 < len(s) && isDigit(s[j+1]) && j > start && isDigit(s[j-1]) {
				sep = true
				group = 0
				j++
				continue
			}
			break
		}
		i = j
		if start > 0 && isAlnum(s[start-1]) || j < len(s) && isAlnum(s[j]) {
			continue
		}
		if nd < 13 || nd > 19 || (sep && maxGroup > 6) {
			continue
		}
		if tokenize.Luhn(digits[:nd]) {
			n++
		}
	}
	return n
}

// Luhn reports whether the digit string passes the Luhn check.
func Luhn(digits string) bool {
	for i := 0; i < len(digits); i++ {
		if !isDigit(digits[i]) {
			return false
		}
	}
	return len(digits) > 1 && tokenize.Luhn([]byte(digits))
}

func isDigit(c byte) bool { return c >= '0' && c <= '9' }
func isAlnum(c byte) bool {
	return isDigit(c) || (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z')
}

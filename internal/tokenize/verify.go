package tokenize

import (
	"errors"
	"fmt"
	"strings"

	"github.com/shopsphere/shardflow/internal/exitcode"
	"github.com/shopsphere/shardflow/internal/registry"
)

// ErrNotTokenized: a PCI column's value reached the consumer in clear (or in a form its
// policy never produces): the connector's tokenize transform is missing or wrong.
var ErrNotTokenized = errors.New("value is not in its landed form")

// ErrMarked: the connector's tokenize transform could not apply the policy and put its
// marker (MarkPrefix + the reason) in the value's place.
var ErrMarked = errors.New("the connector's tokenize transform could not apply the policy")

// MarkPrefix starts the value the Kafka Connect transform writes in place of a value its
// policy cannot apply to (last4 or bin of a value with too few digits): a reason code
// follows (markReasons), never the value. The transform never fails its task over one value (the
// shard's whole stream would stop); the consumer quarantines the event instead.
const MarkPrefix = "!shardflow-pci-error:"

// Verifier checks PCI values that were tokenized before Kafka (by the Connect
// transform, docs/pci.md) and lands them unchanged. It holds no key: the CDC consumer
// never sees a card number nor the key that tokenizes one. It is safe for concurrent use.
type Verifier struct{}

// KeyID is empty: a verifier lands the tokens of whichever key made them; a file
// records the ids its tokens carry (landing.File.KeyIDs).
func (Verifier) KeyID() string { return "" }

// Apply returns value if it is in the landed form of c's policy: a token (tok_<key
// id>_<22 characters>), 4 digits (last4), 6 digits (bin), or text with no card number
// left in it (redact). Anything else is ErrNotTokenized (or ErrMarked), exit 3 (the CDC
// consumer quarantines the event), saying what was wrong, never the value; the caller
// names the column and the row (landing.File.Add).
func (Verifier) Apply(c registry.Column, value string) (string, error) {
	if rest, ok := strings.CutPrefix(value, MarkPrefix); ok {
		return "", exitcode.Wrap(exitcode.CheckFail, fmt.Errorf("policy %s: %w: %s", c.PCI, ErrMarked, markReason(rest)))
	}
	var ok bool
	switch c.PCI {
	case registry.PCIToken:
		ok = isToken(value)
	case registry.PCILast4:
		ok = allDigits(value, 4)
	case registry.PCIBIN:
		ok = allDigits(value, 6)
	case registry.PCIRedact:
		if n := len(FindPANs(value)); n > 0 {
			return "", exitcode.Wrap(exitcode.CheckFail, fmt.Errorf("policy redact: %w: %d card numbers left in the text (is the connector's tokenize transform configured for it? shardctl connectors plan)", ErrNotTokenized, n))
		}
		return value, nil
	case registry.PCIDrop:
		return "", fmt.Errorf("column %s: %w", c.Name, ErrDrop)
	default:
		return "", fmt.Errorf("column %s: %w (policy %q)", c.Name, ErrNotPCI, string(c.PCI))
	}
	if !ok {
		return "", exitcode.Wrap(exitcode.CheckFail, fmt.Errorf("policy %s: %w (is the connector's tokenize transform configured for it? shardctl connectors plan)", c.PCI, ErrNotTokenized))
	}
	return value, nil
}

// KeyIDOf returns the key id of a token, or false for a value not shaped like one
// (tok_<id>_<22 characters>). It only splits, without checking every character: it is
// on the landing path of every token (landing.File), after the tokenizer made the value
// or the Verifier checked it.
func KeyIDOf(token string) (string, bool) {
	rest, ok := strings.CutPrefix(token, Prefix)
	if !ok {
		return "", false
	}
	i := strings.IndexByte(rest, '_')
	if i < 1 || i > 16 || len(rest)-i-1 != 22 {
		return "", false
	}
	return rest[:i], true
}

// isToken reports whether s is a token: tok_<key id: 1-16 of [a-z0-9]>_<22 characters
// of base64url>. (KeyIDOf splits the same shape without checking the characters.)
func isToken(s string) bool {
	id, ok := KeyIDOf(s)
	if !ok {
		return false
	}
	for i := 0; i < len(id); i++ {
		if c := id[i]; !isDigit(c) && (c < 'a' || c > 'z') {
			return false
		}
	}
	for _, c := range []byte(s[len(Prefix)+len(id)+1:]) {
		if !isDigit(c) && (c < 'a' || c > 'z') && (c < 'A' || c > 'Z') && c != '-' && c != '_' {
			return false
		}
	}
	return true
}

// markReasons are the codes the Connect transform writes after MarkPrefix.
var markReasons = map[string]string{
	"fewer-digits": "the value has fewer digits than the policy keeps",
}

// markReason explains a marker's code; a code the transform does not write is reported
// as such, never echoed (a marker must not carry a value into an error).
func markReason(code string) string {
	if r, ok := markReasons[code]; ok {
		return r
	}
	return "an unknown marker"
}

func allDigits(s string, n int) bool {
	if len(s) != n {
		return false
	}
	for i := 0; i < n; i++ {
		if !isDigit(s[i]) {
			return false
		}
	}
	return true
}

// Package tokenize is the keyed tokenizer of docs/contracts.md §4: the one function
// that turns a PCI column's value into its landed form, used by extract-window (batch),
// `tokenize cdc` (CDC) and `tokenize lookup` (operators), so the same card gives the same
// token on every shard, in both paths and in every run.
//
//   - token: tok_<key id>_<base64url, no padding, of HMAC-SHA256(key, "<column>\x00<value>")[:16]>,
//     the value trimmed of surrounding white space first;
//   - last4: the value's last 4 digits; bin: its first 6 digits;
//   - redact: free text with every card-number-like substring replaced by its token
//     (redact.go);
//   - drop: never tokenized (the column is never read nor landed);
//   - NULL stays NULL: callers never pass NULL (Apply takes a string).
//
// The key id is part of every token, so tokens of two keys never collide and a token
// says which key made it (decision 0014: key rotation). No value passed in ever appears
// in an error.
package tokenize

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/base64"
	"errors"
	"fmt"
	"hash"
	"regexp"
	"strings"
	"sync"

	"github.com/shopsphere/shardflow/internal/registry"
)

// MinKeyBytes is the shortest key accepted: HMAC-SHA256's block of entropy.
const MinKeyBytes = 32

// Prefix starts every token.
const Prefix = "tok_"

// macBytes is how much of the HMAC a token keeps (128 bits).
const macBytes = 16

// Sentinel errors; each is wrapped with the column it concerns, never with a value.
var (
	ErrShortKey    = fmt.Errorf("tokenizer key is shorter than %d bytes", MinKeyBytes)
	ErrKeyID       = errors.New("tokenizer key id is not 1-16 lowercase letters and digits")
	ErrDrop        = errors.New("policy drop is never tokenized")
	ErrNotPCI      = errors.New("policy is not one that tokenizes")
	ErrFewerDigits = errors.New("too few digits")
)

var keyIDPattern = regexp.MustCompile(`^[a-z0-9]{1,16}$`)

// Tokenizer is the keyed tokenizer for one key id. It is safe for concurrent use.
type Tokenizer struct {
	keyID string
	pool  sync.Pool // *state
}

// state is one goroutine's HMAC and scratch buffers.
type state struct {
	mac hash.Hash
	in  []byte
	sum []byte
}

// New returns the tokenizer of key id keyID (the shards.yaml tokenizer.key_id) and key
// (at least MinKeyBytes bytes). The key is copied.
func New(keyID string, key []byte) (*Tokenizer, error) {
	if !keyIDPattern.MatchString(keyID) {
		return nil, fmt.Errorf("new tokenizer: %w: %q", ErrKeyID, keyID)
	}
	if len(key) < MinKeyBytes {
		return nil, fmt.Errorf("new tokenizer %s: %w (%d bytes)", keyID, ErrShortKey, len(key))
	}
	k := append([]byte(nil), key...)
	t := &Tokenizer{keyID: keyID}
	t.pool.New = func() any { return &state{mac: hmac.New(sha256.New, k)} }
	return t, nil
}

// KeyID is the key id recorded in tokens and manifests.
func (t *Tokenizer) KeyID() string { return t.keyID }

// Apply returns the landed form of value for column c under c's policy (token, last4,
// bin or redact). Any other policy is an error: drop columns are never read, keep columns land
// unchanged without coming here.
func (t *Tokenizer) Apply(c registry.Column, value string) (string, error) {
	switch c.PCI {
	case registry.PCIToken:
		return t.Token(c.Name, value), nil
	case registry.PCILast4:
		return digits(c.Name, c.PCI, value, 4, true)
	case registry.PCIBIN:
		return digits(c.Name, c.PCI, value, 6, false)
	case registry.PCIRedact:
		s, _ := t.Redact(c.Name, value)
		return s, nil
	case registry.PCIDrop:
		return "", fmt.Errorf("tokenize column %s: %w", c.Name, ErrDrop)
	}
	return "", fmt.Errorf("tokenize column %s: %w (policy %q)", c.Name, ErrNotPCI, string(c.PCI))
}

// Token returns the token of value in column (the token policy).
func (t *Tokenizer) Token(column, value string) string {
	value = strings.TrimSpace(value)
	s := t.pool.Get().(*state)
	s.in = append(append(append(s.in[:0], column...), 0), value...)
	s.mac.Reset()
	s.mac.Write(s.in)
	s.sum = s.mac.Sum(s.sum[:0])
	var b strings.Builder
	b.Grow(len(Prefix) + len(t.keyID) + 1 + base64.RawURLEncoding.EncodedLen(macBytes))
	b.WriteString(Prefix)
	b.WriteString(t.keyID)
	b.WriteByte('_')
	var enc [22]byte // base64.RawURLEncoding.EncodedLen(macBytes)
	base64.RawURLEncoding.Encode(enc[:], s.sum[:macBytes])
	b.Write(enc[:])
	t.pool.Put(s)
	return b.String()
}

// digits returns n ASCII digits of v: the last n (last4) or the first n (bin). Bytes
// of multi-byte UTF-8 characters are never ASCII digits, so bytes are enough.
func digits(column string, policy registry.PCIPolicy, v string, n int, last bool) (string, error) {
	d := make([]byte, 0, n)
	for i := range len(v) {
		j := i
		if last {
			j = len(v) - 1 - i
		}
		if v[j] >= '0' && v[j] <= '9' {
			d = append(d, v[j])
			if len(d) == n {
				break
			}
		}
	}
	if len(d) < n {
		return "", fmt.Errorf("tokenize column %s: %w: %s needs %d", column, ErrFewerDigits, policy, n)
	}
	if last {
		for i, j := 0, n-1; i < j; i, j = i+1, j-1 {
			d[i], d[j] = d[j], d[i]
		}
	}
	return string(d), nil
}

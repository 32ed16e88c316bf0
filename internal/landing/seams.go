package landing

import (
	"io"

	"github.com/shopsphere/shardflow/internal/registry"
)

// Tokenizer gives the landed form of a PCI column's value (docs/contracts.md §4): the
// same column and value give the same result on every shard, in every run and on both
// paths, so batch and CDC give the same token for the same value. Pipeline calls it only
// for columns whose policy is token, last4, bin or redact, never with NULL. Its errors
// never contain the value. Two implementations: *tokenize.Tokenizer (batch: it holds
// the key and tokenizes) and tokenize.Verifier (CDC: the values were tokenized before
// Kafka by the Connect transform; it checks they are in landed form and passes them on,
// holding no key). KeyID is the key id a batch manifest records; empty for a verifier,
// whose files record the ids their tokens carry (File.KeyIDs).
type Tokenizer interface {
	Apply(c registry.Column, value string) (string, error)
	KeyID() string
}

// FileWriter writes landed rows into one file. Write takes one row in the order of the
// columns the writer was opened with, each value a string, int64, int32, bool,
// time.Time or nil (NULL), and keeps no reference to it after returning. Close flushes
// the buffered rows and the footer; it does not close the underlying writer.
type FileWriter interface {
	Write(row []any) error
	Close() error
}

// NewFileWriter opens a FileWriter over w for cols.
type NewFileWriter func(w io.Writer, cols []Column) (FileWriter, error)

var (
	_ FileWriter    = (*ParquetWriter)(nil)
	_ NewFileWriter = OpenParquet
)

// OpenParquet is the NewFileWriter of the landing zone: a ParquetWriter over w.
func OpenParquet(w io.Writer, cols []Column) (FileWriter, error) {
	pw, err := NewParquetWriter(w, cols)
	if err != nil {
		return nil, err
	}
	return pw, nil
}

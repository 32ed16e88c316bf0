package extract

import (
	"bytes"
	"context"
	"errors"
	"io"
	"net"

	"github.com/jackc/pgx/v5/pgconn"

	"github.com/shopsphere/shardflow/internal/exitcode"
	"github.com/shopsphere/shardflow/internal/landing"
	"github.com/shopsphere/shardflow/internal/registry"
)

// Store is the part of the object store extract uses.
//
// Put stores everything read from r under key, replacing what was there; the object
// becomes visible only when r reaches io.EOF, and if reading r fails the previous
// object (or its absence) stays. Delete removes key and succeeds when it is absent.
type Store interface {
	Put(ctx context.Context, key string, r io.Reader) error
	Delete(ctx context.Context, key string) error
}

// Tokenizer turns the value of a PCI column into its landed form (docs/contracts.md §4):
// the same column and value give the same result on every shard and in every run. It is
// called only for columns whose policy is token, last4 or bin, never with NULL. Its
// errors never contain the value.
type Tokenizer interface {
	Apply(c registry.Column, value string) (string, error)
	KeyID() string
}

// FileWriter writes landed rows into one Parquet file. Write takes one row in the order
// of the columns the writer was opened with, as string, int64, int32, bool, time.Time or
// nil, and may keep no reference to it after returning. Close flushes the file footer.
type FileWriter interface {
	Write(row []any) error
	Close() error
}

// NewFileWriter opens a FileWriter over w for the given columns.
type NewFileWriter func(w io.Writer, cols []landing.Column) (FileWriter, error)

func bytesReader(b []byte) io.Reader { return bytes.NewReader(b) }

// classify gives err an exit code: unreachable or interrupted shards are retryable,
// everything else keeps its own code or is permanent.
func classify(err error) error {
	if err == nil {
		return nil
	}
	var ec *exitcode.Error
	if errors.As(err, &ec) {
		return err
	}
	if Retryable(err) {
		return exitcode.Wrap(exitcode.Retryable, err)
	}
	return err
}

// Retryable reports whether err is a transient failure of the shard or the network:
// connection errors, admin shutdowns, serialization failures, resource exhaustion and
// a window that is not closed yet.
func Retryable(err error) bool {
	if errors.Is(err, ErrWindowOpen) {
		return true
	}
	var pe *pgconn.PgError
	if errors.As(err, &pe) {
		switch {
		case len(pe.Code) == 5 && pe.Code[:2] == "08": // connection exception
			return true
		case pe.Code == "40001", pe.Code == "40P01": // serialization failure, deadlock
			return true
		case len(pe.Code) == 5 && (pe.Code[:2] == "53" || pe.Code[:2] == "57"): // resources, operator intervention
			return true
		}
		return false
	}
	var ne net.Error
	if errors.As(err, &ne) {
		return true
	}
	var ce *pgconn.ConnectError
	if errors.As(err, &ce) {
		return true
	}
	return pgconn.SafeToRetry(err) || errors.Is(err, io.ErrUnexpectedEOF) || pgconn.Timeout(err)
}

func retryable(err error) error { return exitcode.Wrap(exitcode.Retryable, err) }
func usageErr(err error) error  { return exitcode.Wrap(exitcode.Usage, err) }
func driftErr(err error) error  { return exitcode.Wrap(exitcode.Drift, err) }
func dataErr(err error) error   { return exitcode.Wrap(exitcode.CheckFail, err) }

package extract

import (
	"bytes"
	"errors"
	"io"
	"net"

	"github.com/jackc/pgx/v5/pgconn"

	"github.com/shopsphere/shardflow/internal/exitcode"
)

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

// Package exitcode maps errors to the process exit codes every task binary shares
// (docs/contracts.md §8), so Airflow retries only what can succeed on a retry.
package exitcode

import (
	"errors"
	"fmt"
)

// Exit codes.
const (
	OK        = 0
	Permanent = 1  // any other permanent error
	Usage     = 2  // bad flag or invalid configuration
	CheckFail = 3  // a data check failed (dq)
	Drift     = 4  // a shard's schema differs from shards.yaml
	Retryable = 75 // EX_TEMPFAIL: try again later (unreachable, window not closed)
)

// Error carries an exit code with its cause.
type Error struct {
	Code int
	Err  error
}

func (e *Error) Error() string { return e.Err.Error() }
func (e *Error) Unwrap() error { return e.Err }

// Retryable reports whether running the same task again can succeed.
func (e *Error) Retryable() bool { return e.Code == Retryable }

// Wrap gives err an exit code; a nil err stays nil.
func Wrap(code int, err error) error {
	if err == nil {
		return nil
	}
	return &Error{Code: code, Err: err}
}

// Errorf formats an error with an exit code.
func Errorf(code int, format string, args ...any) error {
	return &Error{Code: code, Err: fmt.Errorf(format, args...)}
}

// Of returns the exit code for err: 0 for nil, the code of the outermost *Error in its
// chain, else Permanent.
func Of(err error) int {
	if err == nil {
		return OK
	}
	var e *Error
	if errors.As(err, &e) {
		return e.Code
	}
	return Permanent
}

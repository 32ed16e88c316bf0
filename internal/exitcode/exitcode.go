// Package exitcode maps errors to the process exit codes every task binary shares
// (docs/contracts.md §8), so Airflow retries only what can succeed on a retry, and
// combines the codes of several errors into the one a run exits with (Worst, Join).
package exitcode

import (
	"errors"
	"flag"
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
	// Paused: the shard is paused by an operator (internal/pause); the task did
	// nothing and Airflow marks it skipped. It ranks below every other code.
	Paused = 99
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
// chain, 0 for help asked for (flag.ErrHelp, which a command's flag parsing returns
// after -h), else Permanent.
func Of(err error) int {
	if err == nil {
		return OK
	}
	var e *Error
	if errors.As(err, &e) {
		return e.Code
	}
	if errors.Is(err, flag.ErrHelp) {
		return OK
	}
	return Permanent
}

// Worst returns the exit code a run that failed in several places exits with: the code
// of errs ranked highest by
//
//	CheckFail (3) > Drift (4) > Usage (2) > Permanent (1) > Retryable (75) > Paused (99)
//
// Every permanent code ranks over Retryable: Airflow must not retry a run that cannot
// succeed as a whole, and a shard that can retry is retried by the next run anyway.
// Among the permanent codes the one that says most about what to do wins: a failed
// check first, since it can mean lost rows or a PCI value where none may be, and no other
// failure may hide it; then drift, a shard's columns differing from shards.yaml; then a
// usage or configuration error; then any other permanent error. A code not listed above
// ranks as Permanent; between equal ranks the first error's code is kept. Nil errors are
// skipped; without an error Worst returns OK.
func Worst(errs ...error) int {
	code, best := OK, -2
	for _, err := range errs {
		if err == nil {
			continue
		}
		if c := Of(err); rank(c) > best {
			code, best = c, rank(c)
		}
	}
	return code
}

// rank orders exit codes for Worst: the higher, the worse.
func rank(code int) int {
	switch code {
	case CheckFail:
		return 4
	case Drift:
		return 3
	case Usage:
		return 2
	case Retryable:
		return 0
	case Paused:
		return -1
	}
	return 1
}

// Join joins errs as errors.Join does (nil errors dropped; nil when every one is nil)
// under their Worst exit code.
func Join(errs ...error) error {
	err := errors.Join(errs...)
	if err == nil {
		return nil
	}
	return &Error{Code: Worst(errs...), Err: err}
}

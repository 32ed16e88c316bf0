package exitcode

import (
	"errors"
	"flag"
	"fmt"
	"testing"
)

func TestOf(t *testing.T) {
	for _, tc := range []struct {
		err  error
		want int
	}{
		{nil, OK},
		{errors.New("boom"), Permanent},
		{Errorf(Retryable, "shard s01 unreachable"), Retryable},
		{fmt.Errorf("load: %w", Errorf(Drift, "column x")), Drift},
		{Wrap(Usage, Errorf(Retryable, "inner")), Usage}, // the outermost code
		{flag.ErrHelp, OK},
		{fmt.Errorf("parse: %w", flag.ErrHelp), OK},
	} {
		if got := Of(tc.err); got != tc.want {
			t.Errorf("Of(%v) = %d, want %d", tc.err, got, tc.want)
		}
	}
	if Wrap(Usage, nil) != nil {
		t.Error("Wrap(code, nil) is not nil")
	}
}

func TestWorst(t *testing.T) {
	retry := Errorf(Retryable, "unreachable")
	perm := errors.New("boom") // uncoded: Permanent
	usage := Errorf(Usage, "bad flag")
	check := Errorf(CheckFail, "mismatch")
	drift := Errorf(Drift, "column x")
	for _, tc := range []struct {
		name string
		errs []error
		want int
	}{
		{"none", nil, OK},
		{"only nil", []error{nil, nil}, OK},
		{"one retryable", []error{retry}, Retryable},
		{"retryable only", []error{retry, retry}, Retryable},
		// permanent 1..4 over retryable 75, in either order (the CDC consumer's shards)
		{"permanent over retryable", []error{retry, perm, retry}, Permanent},
		{"retryable after permanent", []error{perm, retry}, Permanent},
		{"usage over retryable", []error{retry, usage}, Usage},
		{"check over retryable", []error{retry, check}, CheckFail},
		{"drift over retryable", []error{nil, retry, drift}, Drift},
		// among the permanent codes: check > drift > usage > permanent
		{"usage over permanent", []error{perm, usage, perm}, Usage},
		{"drift over usage", []error{usage, drift}, Drift},
		{"check over drift", []error{drift, check, usage, perm, retry}, CheckFail},
		{"check over usage", []error{usage, check}, CheckFail},
		{"an unlisted code ranks as permanent, first kept", []error{Errorf(9, "x"), perm}, 9},
		{"wrapped codes count", []error{fmt.Errorf("shard s00: %w", drift), perm}, Drift},
	} {
		if got := Worst(tc.errs...); got != tc.want {
			t.Errorf("%s: Worst = %d, want %d", tc.name, got, tc.want)
		}
	}
}

func TestJoin(t *testing.T) {
	if Join() != nil || Join(nil, nil) != nil {
		t.Fatal("Join of no errors is not nil")
	}
	retry := Errorf(Retryable, "s00 unreachable")
	drift := Errorf(Drift, "s01 column x")
	err := Join(retry, nil, drift)
	if Of(err) != Drift {
		t.Errorf("Join(retryable, drift) exits %d, want %d", Of(err), Drift)
	}
	if !errors.Is(err, retry) || !errors.Is(err, drift) {
		t.Error("Join does not wrap every error")
	}
	if err.Error() != "s00 unreachable\ns01 column x" {
		t.Errorf("Join message %q", err.Error())
	}
	if Of(Join(retry)) != Retryable {
		t.Error("Join(retryable) is not retryable")
	}
}

package command

import (
	"bytes"
	"errors"
	"flag"
	"fmt"
	"testing"

	"github.com/shopsphere/shardflow/internal/exitcode"
)

func TestReport(t *testing.T) {
	for _, tc := range []struct {
		err    error
		code   int
		stderr string
	}{
		{nil, 0, ""},
		{flag.ErrHelp, 0, ""},
		{fmt.Errorf("parse: %w", flag.ErrHelp), 0, ""},
		{exitcode.Errorf(exitcode.Retryable, "shard s01 unreachable"), 75, "load: shard s01 unreachable\n"},
		{exitcode.Errorf(exitcode.Usage, "--shard is required"), 2, "load: --shard is required\n"},
		{errors.New("boom"), 1, "load: boom\n"},
	} {
		var b bytes.Buffer
		if code := report(&b, "load", tc.err); code != tc.code || b.String() != tc.stderr {
			t.Errorf("report(%v) = %d %q, want %d %q", tc.err, code, b.String(), tc.code, tc.stderr)
		}
	}
}

func TestEnviron(t *testing.T) {
	t.Setenv("SHARDFLOW_TEST_VAR", "a=b")
	if got := Environ()["SHARDFLOW_TEST_VAR"]; got != "a=b" {
		t.Fatalf("Environ()[SHARDFLOW_TEST_VAR] = %q, want a=b", got)
	}
}

package command

import (
	"bytes"
	"errors"
	"flag"
	"fmt"
	"strings"
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

func TestParse(t *testing.T) {
	var usage bytes.Buffer
	newSet := func() (*flag.FlagSet, *bool) {
		usage.Reset()
		fs := NewFlagSet("dq", &usage, func(fs *flag.FlagSet) { fmt.Fprint(fs.Output(), "usage: dq\n"); fs.PrintDefaults() })
		return fs, fs.Bool("cross-shard", false, "cross-shard checks")
	}
	fs, cross := newSet()
	if err := Parse(fs, []string{"--cross-shard"}); err != nil || !*cross || NoArgs(fs) != nil {
		t.Fatalf("Parse(--cross-shard) = %v, cross-shard %v", err, *cross)
	}
	fs, _ = newSet()
	if err := Parse(fs, []string{"-h"}); !errors.Is(err, flag.ErrHelp) || exitcode.Of(err) != exitcode.OK || !strings.Contains(usage.String(), "usage: dq\n  -cross-shard") {
		t.Errorf("Parse(-h) = %v (exit %d), usage %q", err, exitcode.Of(err), usage.String())
	}
	fs, _ = newSet()
	if err := Parse(fs, []string{"--nope"}); exitcode.Of(err) != exitcode.Usage || !strings.Contains(usage.String(), "flag provided but not defined: -nope") {
		t.Errorf("Parse(--nope) = %v (exit %d), stderr %q", err, exitcode.Of(err), usage.String())
	}
	fs, cross = newSet()
	if err := Parse(fs, []string{"extra", "--cross-shard"}); err != nil || *cross {
		t.Fatalf("Parse(extra --cross-shard) = %v, cross-shard %v", err, *cross)
	}
	if err := NoArgs(fs); exitcode.Of(err) != exitcode.Usage || err.Error() != `unexpected argument "extra"` {
		t.Errorf("NoArgs = %v (exit %d)", err, exitcode.Of(err))
	}
}

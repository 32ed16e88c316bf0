package shardctl

import (
	"bytes"
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/shopsphere/shardflow/internal/capacity"
	"github.com/shopsphere/shardflow/internal/exitcode"
)

// capacity prints the plan at 16 and 64 shards with its sources; --write rewrites a
// document's block, --check accepts it and exits 3 once the block is edited.
func TestCapacityCommand(t *testing.T) {
	ctx := context.Background()
	rates := filepath.Join("..", "..", capacity.DefaultRatesFile)
	var out bytes.Buffer
	env := Env{Registry: "../../shards.yaml", Stdout: &out, Stderr: &out}
	if err := Run(ctx, env, []string{"capacity", "--rates", rates}); err != nil {
		t.Fatalf("capacity: %v\n%s", err, out.String())
	}
	for _, want := range []string{"16 shards", "64 shards", "hourly DAG tasks", "579", "(measured here)", "(brief)", "vendor doc: https://"} {
		if !strings.Contains(out.String(), want) {
			t.Errorf("output lacks %q:\n%s", want, out.String())
		}
	}

	doc := filepath.Join(t.TempDir(), "design.md")
	if err := os.WriteFile(doc, []byte("# design\n\n"+capacity.BeginMarker+"\n"+capacity.EndMarker+"\n\nrest\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := Run(ctx, env, []string{"capacity", "--rates", rates, "--check", doc}); exitcode.Of(err) != exitcode.CheckFail {
		t.Fatalf("check of an empty block: %v (exit %d), want %d", err, exitcode.Of(err), exitcode.CheckFail)
	}
	if err := Run(ctx, env, []string{"capacity", "--rates", rates, "--write", doc}); err != nil {
		t.Fatalf("write: %v", err)
	}
	if err := Run(ctx, env, []string{"capacity", "--rates", rates, "--check", doc}); err != nil {
		t.Fatalf("check after write: %v", err)
	}
	b, _ := os.ReadFile(doc)
	if !strings.Contains(string(b), "| hourly DAG tasks | 147 | 579 |") || !strings.HasSuffix(string(b), capacity.EndMarker+"\n\nrest\n") {
		t.Errorf("block not written in place:\n%s", b)
	}
	if err := os.WriteFile(doc, bytes.Replace(b, []byte("| 579 |"), []byte("| 580 |"), 1), 0o644); err != nil {
		t.Fatal(err)
	}
	out.Reset()
	err := Run(ctx, env, []string{"capacity", "--rates", rates, "--check", doc})
	if exitcode.Of(err) != exitcode.CheckFail || !strings.Contains(out.String(), "-| hourly DAG tasks | 147 | 580 |") {
		t.Fatalf("check after an edit: %v (exit %d), want exit 3 with the diff:\n%s", err, exitcode.Of(err), out.String())
	}
}

func TestCapacityErrors(t *testing.T) {
	ctx := context.Background()
	dir := t.TempDir()
	partial := filepath.Join(dir, "rates.json")
	rs, err := capacity.LoadRates(filepath.Join("..", "..", capacity.DefaultRatesFile))
	if err != nil {
		t.Fatal(err)
	}
	delete(rs, "cdc_events_per_s")
	if err := capacity.UpdateRates(partial, rs); err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		name string
		args []string
		says []string
	}{
		{"rate missing", []string{"--rates", partial}, []string{"cdc_events_per_s", "make bench-cdc", partial}},
		{"no rates file", []string{"--rates", filepath.Join(dir, "none.json")}, []string{"none.json", "make bench"}},
		{"bad shards", []string{"--shards", "16,x"}, []string{"--shards"}},
		{"bad format", []string{"--format", "html"}, []string{"--format"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var out bytes.Buffer
			env := Env{Registry: "../../shards.yaml", Stdout: &out, Stderr: &out}
			err := Run(ctx, env, append([]string{"capacity"}, tc.args...))
			if exitcode.Of(err) != exitcode.Usage {
				t.Fatalf("err = %v (exit %d), want exit %d", err, exitcode.Of(err), exitcode.Usage)
			}
			for _, s := range tc.says {
				if !strings.Contains(err.Error(), s) {
					t.Errorf("error %q does not name %q", err, s)
				}
			}
		})
	}
}

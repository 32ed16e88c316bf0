package shardctl

import (
	"bytes"
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/shopsphere/shardflow/internal/exitcode"
)

// gen-seeds writes the seeds, --check accepts them, and --check exits 3 naming the file
// once a seed no longer matches shards.yaml.
func TestGenSeedsCheck(t *testing.T) {
	dir := t.TempDir()
	var out bytes.Buffer
	env := Env{Registry: "../../shards.yaml", Stdout: &out, Stderr: &out}
	ctx := context.Background()
	if err := Run(ctx, env, []string{"gen-seeds", "--dir", dir, "--check"}); exitcode.Of(err) != exitcode.CheckFail {
		t.Fatalf("check on an empty dir: %v (exit %d), want exit %d", err, exitcode.Of(err), exitcode.CheckFail)
	}
	if err := Run(ctx, env, []string{"gen-seeds", "--dir", dir}); err != nil {
		t.Fatalf("gen-seeds: %v\n%s", err, out.String())
	}
	if err := Run(ctx, env, []string{"gen-seeds", "--dir", dir, "--check"}); err != nil {
		t.Fatalf("check after gen-seeds: %v", err)
	}
	path := filepath.Join(dir, "shard_ownership.csv")
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(path, bytes.Replace(data, []byte("s03,"), []byte("s01,"), 1), 0o644); err != nil {
		t.Fatal(err)
	}
	err = Run(ctx, env, []string{"gen-seeds", "--dir", dir, "--check"})
	if exitcode.Of(err) != exitcode.CheckFail || !strings.Contains(err.Error(), "shard_ownership.csv") {
		t.Fatalf("check after tampering: %v (exit %d), want exit %d naming shard_ownership.csv", err, exitcode.Of(err), exitcode.CheckFail)
	}
}

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

// gen-dags --check passes on the committed dags/, fails with exit 3 naming the file
// once a generated file is edited, and gen-dags writes it back.
func TestGenDagsCheck(t *testing.T) {
	var out bytes.Buffer
	env := Env{Registry: "../../shards.yaml", Stdout: &out, Stderr: &out}
	ctx := context.Background()
	if err := Run(ctx, env, []string{"gen-dags", "--dir", "../../dags", "--check"}); err != nil {
		t.Fatalf("check of the committed dags/: %v\n%s", err, out.String())
	}
	dir := t.TempDir()
	if err := Run(ctx, env, []string{"gen-dags", "--dir", dir}); err != nil {
		t.Fatalf("gen-dags: %v\n%s", err, out.String())
	}
	path := filepath.Join(dir, "local", "hourly.py")
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(path, bytes.Replace(data, []byte(`"s02",`), nil, 1), 0o644); err != nil {
		t.Fatal(err)
	}
	err = Run(ctx, env, []string{"gen-dags", "--dir", dir, "--check"})
	if exitcode.Of(err) != exitcode.CheckFail || !strings.Contains(err.Error(), "local/hourly.py") {
		t.Fatalf("check after an edit: %v (exit %d), want exit %d naming local/hourly.py", err, exitcode.Of(err), exitcode.CheckFail)
	}
	out.Reset()
	if err := Run(ctx, env, []string{"gen-dags", "--dir", dir}); err != nil || !strings.Contains(out.String(), "1 file(s) changed") {
		t.Fatalf("regenerate: %v\n%s", err, out.String())
	}
	if err := Run(ctx, env, []string{"gen-dags", "--dir", dir, "--retries", "-1"}); exitcode.Of(err) != exitcode.Usage {
		t.Fatalf("bad retries: %v, want exit %d", err, exitcode.Usage)
	}
}

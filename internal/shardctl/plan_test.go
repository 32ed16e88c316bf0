package shardctl

import (
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/shopsphere/shardflow/internal/exitcode"
)

// copyTree copies the committed generated directories into a temporary repository root.
func copyTree(t *testing.T, root string, dirs ...string) {
	t.Helper()
	for _, d := range dirs {
		if err := os.MkdirAll(filepath.Dir(filepath.Join(root, d)), 0o755); err != nil {
			t.Fatal(err)
		}
		if out, err := exec.Command("cp", "-r", filepath.Join("../..", d), filepath.Join(root, d)).CombinedOutput(); err != nil {
			t.Fatalf("cp %s: %v %s", d, err, out)
		}
	}
}

// Invariant 9: a new shard is one shards.yaml edit. plan names the registry change, the
// dq coverage it adds and every generated file that must follow (and no other);
// generate writes exactly those; afterwards plan --check and generate --check pass.
func TestPlanAndGenerateNewShard(t *testing.T) {
	root := t.TempDir()
	copyTree(t, root, "dbt/seeds", "dags", "docker/connect/connectors")
	base, err := os.ReadFile("../../shards.yaml")
	if err != nil {
		t.Fatal(err)
	}
	edited := strings.Replace(string(base), "    buckets: [\"3072-4095\"]\n", `    buckets: ["3072-4095"]
  - id: s04
    state: onboarding
    connection:
      extract: {env: SHARDFLOW_S04_EXTRACT_DSN, k8s_secret: shard-s04, k8s_key: extract-dsn}
      replication: {env: SHARDFLOW_S04_REPLICATION_DSN, k8s_secret: shard-s04, k8s_key: replication-dsn}
`, 1)
	reg := filepath.Join(root, "shards.yaml")
	if err := os.WriteFile(reg, []byte(edited), 0o644); err != nil {
		t.Fatal(err)
	}
	env := Env{Registry: reg, Name: "local"}

	out, err := runCmd(t, env, "plan", "--base", "../../shards.yaml", "--root", root, "--diff")
	if err != nil {
		t.Fatalf("plan: %v\n%s", err, out)
	}
	for _, want := range []string{
		"~ shard s04 added (onboarding, buckets none)",
		"dq coverage added: s04/order_items, s04/orders, s04/payments",
		"modify shards.csv", "create s04.json", "modify local/hourly.py", "modify production/shardflow_tasks.py",
		"+s04,onboarding,", "shard-s04", // in the diffs
		"0 error(s)",
	} {
		if !strings.Contains(out, want) {
			t.Errorf("plan output lacks %q:\n%s", want, out)
		}
	}
	if strings.Contains(out, "shard_ownership.csv") {
		t.Errorf("an onboarding shard owns nothing, the ownership seed must not change:\n%s", out)
	}
	if _, err := runCmd(t, env, "plan", "--base", "../../shards.yaml", "--root", root, "--check"); exitcode.Of(err) != exitcode.CheckFail {
		t.Errorf("plan --check with stale files: exit %d, want 3", exitcode.Of(err))
	}
	if _, err := runCmd(t, env, "generate", "--root", root, "--check"); exitcode.Of(err) != exitcode.CheckFail {
		t.Errorf("generate --check with stale files: exit %d, want 3", exitcode.Of(err))
	}

	out, err = runCmd(t, env, "generate", "--root", root)
	if err != nil {
		t.Fatalf("generate: %v\n%s", err, out)
	}
	if !strings.Contains(out, "create docker/connect/connectors/s04.json") || !strings.Contains(out, "modify dbt/seeds/shards.csv") {
		t.Errorf("generate output:\n%s", out)
	}
	if out, err := runCmd(t, env, "generate", "--root", root, "--check"); err != nil {
		t.Errorf("generate --check after generate: %v\n%s", err, out)
	}
	if out, err := runCmd(t, env, "plan", "--base", "../../shards.yaml", "--root", root, "--check"); err != nil {
		t.Errorf("plan --check after generate: %v\n%s", err, out)
	}
}

// The committed generated files agree with the committed shards.yaml (CI fails on drift).
func TestGenerateCheckCommitted(t *testing.T) {
	out, err := runCmd(t, Env{Registry: "../../shards.yaml", Name: "local"}, "generate", "--root", "../..", "--check")
	if err != nil {
		t.Fatalf("%v\n%s", err, out)
	}
}

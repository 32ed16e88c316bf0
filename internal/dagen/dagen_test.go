package dagen

import (
	"bytes"
	"errors"
	"flag"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/shopsphere/shardflow/internal/genfile"
	"github.com/shopsphere/shardflow/internal/registry"
)

// update rewrites the committed DAGs under dags/: go test ./internal/dagen -update
var update = flag.Bool("update", false, "rewrite dags/ from shards.yaml")

const repoRoot = "../.."

func load(t *testing.T, text string) *registry.Registry {
	t.Helper()
	r, err := registry.Check(strings.NewReader(text))
	if err != nil {
		t.Fatal(err)
	}
	return r
}

func committed(t *testing.T) string {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(repoRoot, "shards.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

func renderMap(t *testing.T, r *registry.Registry) map[string][]byte {
	t.Helper()
	set, err := Render(r, DefaultOptions(), t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	out := map[string][]byte{}
	for _, f := range set.Files {
		out[f.Path] = f.Data
	}
	return out
}

// TestCommittedDAGsMatchRegistry is the golden test of the generator: dags/ is exactly
// what shards.yaml renders (the check `shardctl gen-dags --check` makes in make test).
func TestCommittedDAGsMatchRegistry(t *testing.T) {
	set, err := Render(load(t, committed(t)), DefaultOptions(), filepath.Join(repoRoot, "dags"))
	if err != nil {
		t.Fatal(err)
	}
	if *update {
		if _, err := set.Write(); err != nil {
			t.Fatal(err)
		}
	}
	stale, err := set.Diff()
	if err != nil {
		t.Fatal(err)
	}
	if len(stale) > 0 {
		t.Errorf("dags/%v out of date with shards.yaml: run `shardctl gen-dags` (or go test ./internal/dagen -update)", genfile.Paths(stale))
	}
}

// TestBothTargetsFromOneSpec: every environment gets the same DAG files; only the task
// factory differs, local running subprocesses and k8s building pods.
func TestBothTargetsFromOneSpec(t *testing.T) {
	out := renderMap(t, load(t, committed(t)))
	for _, k := range Kinds {
		local, prod := out["local/"+k+".py"], out["production/"+k+".py"]
		if local == nil || prod == nil {
			t.Fatalf("%s: missing in one environment", k)
		}
		// the docstring names environment and target; the code is the same
		if got, want := stripHeader(local), stripHeader(prod); !bytes.Equal(got, want) {
			t.Errorf("%s.py differs between local and production beyond its header", k)
		}
	}
	if !bytes.Contains(out["local/shardflow_tasks.py"], []byte("subprocess.Popen(")) ||
		bytes.Contains(out["local/shardflow_tasks.py"], []byte("KubernetesPodOperator")) {
		t.Error("local factory does not run subprocesses")
	}
	if !bytes.Contains(out["production/shardflow_tasks.py"], []byte("class ShardflowPodOperator(KubernetesPodOperator)")) {
		t.Error("production factory does not build KubernetesPodOperators")
	}
	for _, want := range []string{`IMAGE = "shopsphere/shardflow-tasks:0.1.0"`, `CODE_VERSION = "0.1.0"`, `NAMESPACE = "data-ingest"`,
		`"s02": ("SHARDFLOW_S02_EXTRACT_DSN", "shard-s02", "extract-dsn"),`,
		`TOKENIZER_KEY = ("SHARDFLOW_TOKEN_KEY", "shardflow-tokenizer", "key")`} {
		if !bytes.Contains(out["production/shardflow_tasks.py"], []byte(want)) {
			t.Errorf("production factory lacks %s", want)
		}
	}
}

func stripHeader(b []byte) []byte {
	_, rest, _ := bytes.Cut(b[3:], []byte(`"""`))
	return rest
}

// TestAddShardChangesOnlyTheShardLists: invariant 9. Adding a shard to shards.yaml is
// the only edit; the rendered difference is one line per DAG file (the shard in SHARDS)
// and the shard's secret reference in the k8s factory, each naming the new shard.
func TestAddShardChangesOnlyTheShardLists(t *testing.T) {
	text := committed(t)
	before := renderMap(t, load(t, text))
	added := strings.Replace(text, "\n# Ownership history.", `
  - id: s04
    state: onboarding
    connection:
      extract: {env: SHARDFLOW_S04_EXTRACT_DSN, k8s_secret: shard-s04, k8s_key: extract-dsn}
      replication: {env: SHARDFLOW_S04_REPLICATION_DSN, k8s_secret: shard-s04, k8s_key: replication-dsn}

# Ownership history.`, 1)
	if added == text {
		t.Fatal("fixture: could not insert the shard")
	}
	after := renderMap(t, load(t, added))
	var report strings.Builder
	changedFiles := 0
	for path, b := range after {
		plus, minus := lineDiff(before[path], b)
		if len(plus) == 0 && len(minus) == 0 {
			continue
		}
		changedFiles++
		for _, l := range minus {
			t.Errorf("%s: a line removed by adding a shard: %s", path, l)
		}
		for _, l := range plus {
			report.WriteString(path + ": +" + l + "\n")
			if !strings.Contains(l, "s04") && !strings.Contains(l, "S04") {
				t.Errorf("%s: an added line that does not name the new shard: %s", path, l)
			}
		}
	}
	// four DAG files per environment, plus the k8s factory's secret reference
	if changedFiles != 9 {
		t.Errorf("%d files changed, want 9:\n%s", changedFiles, report.String())
	}
	t.Logf("adding shard s04 changes:\n%s", report.String())
}

// lineDiff returns the lines only in b (plus) and only in a (minus), as multisets.
func lineDiff(a, b []byte) (plus, minus []string) {
	count := map[string]int{}
	for _, l := range strings.Split(string(a), "\n") {
		count[l]++
	}
	for _, l := range strings.Split(string(b), "\n") {
		if count[l] > 0 {
			count[l]--
			continue
		}
		plus = append(plus, l)
	}
	for l, n := range count {
		for ; n > 0; n-- {
			minus = append(minus, l)
		}
	}
	return plus, minus
}

func TestRetiredShardsAreNotRun(t *testing.T) {
	r := load(t, committed(t))
	r.Shards[1].State = registry.StateRetired
	out := renderMap(t, r)
	if bytes.Contains(out["local/hourly.py"], []byte(`"s01"`)) {
		t.Error("a retired shard has a task group")
	}
}

func TestCron(t *testing.T) {
	for _, c := range []struct {
		window string
		cron   string
	}{{"1m", "* * * * *"}, {"5m", "*/5 * * * *"}, {"30m", "*/30 * * * *"}, {"1h", "0 * * * *"},
		{"2h", "0 */2 * * *"}, {"12h", "0 */12 * * *"}, {"24h", "0 0 * * *"}} {
		d, _ := time.ParseDuration(c.window)
		got, err := Cron(d)
		if err != nil || got != c.cron {
			t.Errorf("Cron(%s) = %q, %v; want %q", c.window, got, err, c.cron)
		}
	}
	for _, w := range []time.Duration{45 * time.Minute, 90 * time.Minute} {
		if _, err := Cron(w); !errors.Is(err, ErrNoCron) {
			t.Errorf("Cron(%s): %v, want ErrNoCron", w, err)
		}
	}
}

// TestFinancePoke: the finance sensors check as often as the options say; an interval
// under a second is refused, not rendered.
func TestFinancePoke(t *testing.T) {
	opt := DefaultOptions()
	opt.FinancePoke = 10 * time.Second
	set, err := Render(load(t, committed(t)), opt, t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	for _, f := range set.Files {
		if strings.HasSuffix(f.Path, "/finance_daily.py") && !bytes.Contains(f.Data, []byte("poke_interval=10,")) {
			t.Errorf("%s: no poke_interval=10", f.Path)
		}
	}
	opt.FinancePoke = 0
	if _, err := Render(load(t, committed(t)), opt, t.TempDir()); err == nil || !strings.Contains(err.Error(), "finance poke interval") {
		t.Errorf("FinancePoke 0: %v, want an error naming the finance poke interval", err)
	}
}

// TestCatchupFollowsStart: with extract.start the hourly DAG starts there and catches up
// every window; without it, no catchup (a missed window is a backfill).
func TestCatchupFollowsStart(t *testing.T) {
	with := renderMap(t, load(t, committed(t)))["local/hourly.py"]
	if !bytes.Contains(with, []byte("start_date=datetime(2026, 12, 1, 0, 0, tzinfo=UTC),\n    catchup=True,")) {
		t.Errorf("extract.start 2026-12-01: no catchup from it:\n%s", with)
	}
	text := strings.Replace(committed(t), "  start: 2026-12-01T00:00:00Z\n", "", 1)
	without := renderMap(t, load(t, text))["local/hourly.py"]
	if !bytes.Contains(without, []byte("catchup=False,")) {
		t.Errorf("no extract.start: catchup is not off:\n%s", without)
	}
}

// TestK8sTargetNeedsSecretRefs: a k8s environment whose shard secret has no Kubernetes
// secret is an error naming the field, never a pod without its DSN.
func TestK8sTargetNeedsSecretRefs(t *testing.T) {
	text := strings.Replace(committed(t), "extract: {env: SHARDFLOW_S01_EXTRACT_DSN, k8s_secret: shard-s01, k8s_key: extract-dsn}",
		"extract: {env: SHARDFLOW_S01_EXTRACT_DSN}", 1)
	_, err := Render(load(t, text), DefaultOptions(), t.TempDir())
	if err == nil || !strings.Contains(err.Error(), "shards[1].connection.extract.k8s_secret") {
		t.Fatalf("got %v, want an error naming shards[1].connection.extract.k8s_secret", err)
	}
	text = strings.Replace(committed(t), `image: "shopsphere/shardflow-tasks:0.1.0"`, `image: "shopsphere/shardflow-tasks"`, 1)
	if _, err := Render(load(t, text), DefaultOptions(), t.TempDir()); err == nil || !strings.Contains(err.Error(), "airflow.image") {
		t.Fatalf("untagged image: %v, want an error naming airflow.image", err)
	}
}

// TestNoSecretValues: the rendered files name secrets, never hold one: no DSN, no key.
func TestNoSecretValues(t *testing.T) {
	for path, b := range renderMap(t, load(t, committed(t))) {
		for _, bad := range []string{"postgres://", "password", "BEGIN PRIVATE KEY"} {
			if bytes.Contains(bytes.ToLower(b), []byte(strings.ToLower(bad))) {
				t.Errorf("%s contains %q", path, bad)
			}
		}
	}
}

// The set owns dags/: a file no longer generated is stale and goes; Python's and ruff's
// caches are not the generator's.
func TestSetOwnsTheDirectory(t *testing.T) {
	dir := t.TempDir()
	set, err := Render(load(t, committed(t)), DefaultOptions(), dir)
	if err != nil {
		t.Fatal(err)
	}
	for _, p := range []string{"old/gone.py", "local/__pycache__/hourly.cpython-311.pyc"} {
		if err := os.MkdirAll(filepath.Dir(filepath.Join(dir, p)), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(dir, p), []byte("x"), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := set.Write(); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(filepath.Join(dir, "old", "gone.py")); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("a file no longer generated is still there: %v", err)
	}
	if _, err := os.Stat(filepath.Join(dir, "local", "__pycache__", "hourly.cpython-311.pyc")); err != nil {
		t.Errorf("a cache file was removed: %v", err)
	}
	if stale, err := set.Diff(); err != nil || len(stale) != 0 {
		t.Errorf("after Write: stale %v, %v", stale, err)
	}
}

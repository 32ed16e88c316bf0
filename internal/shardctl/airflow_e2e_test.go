//go:build airflowe2e

package shardctl

import (
	"bytes"
	"context"
	"database/sql"
	"math/big"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	_ "github.com/duckdb/duckdb-go/v2"
	"github.com/jackc/pgx/v5"

	"github.com/shopsphere/shardflow/internal/airflow"
	"github.com/shopsphere/shardflow/internal/airflow/airflowtest"
	"github.com/shopsphere/shardflow/internal/dagen"
	"github.com/shopsphere/shardflow/internal/extract/extracttest"
	"github.com/shopsphere/shardflow/internal/fleet"
	"github.com/shopsphere/shardflow/internal/fleet/fleettest"
	"github.com/shopsphere/shardflow/internal/landing"
	"github.com/shopsphere/shardflow/internal/registry"
)

const e2eTokenKey = "airflow-e2e-tokenizer-key-0123456789abcdef"

// TestAirflowBatchPathIsolationAndRerun runs the generated local-target DAGs in a real
// Airflow 3 over a real 4-shard fleet:
//
//  1. `airflow dags test` of the hourly DAG for window W1: every task runs the real
//     binaries, and the warehouse then equals the sources (count + checksum per table).
//  2. Isolation: with shard s02 stopped, a run of window W2 triggered through the REST
//     API fails only s02's group; the other shards load W2 and pass dq; dbt and the
//     cross-shard dq wait (upstream_failed).
//  3. After s02 is back, `shardctl rerun --shard s02 --run <id>` clears exactly s02's
//     failed tasks (and the fleet-wide ones behind them); the run succeeds, no other
//     shard's task ran again, and the warehouse equals the sources with no duplicates.
func TestAirflowBatchPathIsolationAndRerun(t *testing.T) {
	root := airflowtest.Root(t)
	bin := filepath.Join(root, "var", "bin")
	for _, b := range []string{"extract-window", "load", "dq"} {
		airflowtest.Need(t, filepath.Join(bin, b), "build")
	}
	airflowtest.Need(t, filepath.Join(root, "var", "venv", "dbt", "bin", "dbt"), "deps-dbt")
	ctx := context.Background()

	work := t.TempDir()
	regPath := filepath.Join(work, "shards.yaml")
	text, err := os.ReadFile(filepath.Join(root, "shards.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	s := strings.Replace(string(text), "path: var/lake", "path: "+filepath.Join(work, "lake"), 1)
	s = strings.Replace(s, "path: var/warehouse.duckdb", "path: "+filepath.Join(work, "warehouse.duckdb"), 1)
	if err := os.WriteFile(regPath, []byte(s), 0o644); err != nil {
		t.Fatal(err)
	}
	reg := fleettest.Load(t, regPath)
	w := reg.Extract.Window.Duration
	// W1 runs through `airflow dags test` (logical date W1's end), W2 through the API
	// (logical date W2's start); a window apart, so the two runs' logical dates differ
	w1 := time.Date(2026, 3, 10, 9, 0, 0, 0, time.UTC)
	w2 := w1.Add(2 * w)

	// DAGs rendered from this registry, with a short retry policy (only exit 75 retries)
	files, err := dagen.Render(reg, dagen.Options{Retries: 1, RetryDelay: time.Second, MaxRetryDelay: 2 * time.Second})
	if err != nil {
		t.Fatal(err)
	}
	dags := filepath.Join(work, "dags")
	if _, err := dagen.Write(dags, files); err != nil {
		t.Fatal(err)
	}

	f := fleettest.Start(t, reg)
	for _, sh := range f.Shards {
		fill(t, ctx, f, reg, sh.ID, w1, "w1")
		fill(t, ctx, f, reg, sh.ID, w2, "w2")
	}
	vars := map[string]string{
		"SHARDFLOW_REGISTRY":     regPath,
		"SHARDFLOW_BIN":          bin,
		"SHARDFLOW_REPO":         root,
		"SHARDFLOW_TOKEN_KEY":    e2eTokenKey,
		"SHARDFLOW_CODE_VERSION": "airflow-e2e",
	}
	for k, v := range f.Env() {
		vars[k] = v
	}
	home := airflowtest.New(t, filepath.Join(dags, "local"), vars)
	hourly := dagen.DAGID(reg.Fleet, dagen.Hourly)

	// 1. airflow dags test: the whole batch path for W1 (its logical date is W1's end:
	// a manual run processes the last window before it)
	tctx, cancel := context.WithTimeout(ctx, 15*time.Minute)
	defer cancel()
	out, err := home.Airflow(tctx, "dags", "test", hourly, w1.Add(w).Format(time.RFC3339))
	if err != nil || !strings.Contains(out, "state=success") && !strings.Contains(out, "DagRunState.SUCCESS") {
		t.Fatalf("airflow dags test %s: %v\n%s", hourly, err, lastLines(out, 80))
	}
	wh := filepath.Join(work, "warehouse.duckdb")
	equalSources(t, ctx, f, reg, wh, w1, nil)

	// 2. one shard down: only its group fails
	home.Start(hourly)
	client, err := home.Client()
	if err != nil {
		t.Fatal(err)
	}
	if err := f.StopShard(ctx, "s02"); err != nil {
		t.Fatal(err)
	}
	run, err := client.TriggerRun(ctx, hourly, airflow.Trigger{RunID: "isolation-w2", LogicalDate: w2, DataIntervalStart: w2, DataIntervalEnd: w2.Add(w)})
	if err != nil {
		t.Fatal(err)
	}
	wctx, wcancel := context.WithTimeout(ctx, 12*time.Minute)
	defer wcancel()
	done, err := client.WaitRun(wctx, hourly, run.RunID, 2*time.Second)
	if err != nil || done.State != airflow.StateFailed {
		t.Fatalf("run with s02 down: %+v %v\n%s", done, err, home.Logs())
	}
	tis, err := client.TaskInstances(ctx, hourly, run.RunID)
	if err != nil {
		t.Fatal(err)
	}
	tries := map[string]int{}
	for _, ti := range tis {
		tries[ti.TaskID] = ti.TryNumber
		g := dagen.GroupOf(ti.TaskID)
		switch {
		case g == "s02" && strings.Contains(ti.TaskID, ".extract_"):
			if ti.State != airflow.StateFailed {
				t.Errorf("%s: %s, want failed", ti.TaskID, ti.State)
			}
			if ti.TryNumber != 2 {
				t.Errorf("%s: %d tries, want 2 (exit 75 is retried once with this policy)", ti.TaskID, ti.TryNumber)
			}
		case g == "s02" || ti.TaskID == "dbt_build" || ti.TaskID == "dq_cross_shard":
			if ti.State != airflow.StateUpstreamFailed {
				t.Errorf("%s: %s, want upstream_failed", ti.TaskID, ti.State)
			}
		default:
			if ti.State != airflow.StateSuccess {
				t.Errorf("%s: %s, want success (a shard down must not fail another shard's group)\n%s", ti.TaskID, ti.State, home.TaskLog(hourly, run.RunID, ti.TaskID))
			}
		}
	}
	if t.Failed() {
		t.FailNow()
	}
	equalSources(t, ctx, f, reg, wh, w2, map[string]bool{"s02": true})

	// shardctl status shows the failed group
	var buf bytes.Buffer
	env := Env{Registry: regPath, Name: "local", Stdout: &buf, Stderr: &buf,
		Vars: map[string]string{"SHARDFLOW_AIRFLOW_USERNAME": airflowtest.User, "SHARDFLOW_AIRFLOW_PASSWORD": airflowtest.Password}}
	if err := Run(ctx, env, []string{"status", "--airflow-url", home.URL(), "--runs", "1"}); err != nil {
		t.Fatalf("status: %v\n%s", err, buf.String())
	}
	for _, want := range []string{"run isolation-w2: failed", "s00      success 9", "s02      failed 3, upstream_failed 6; failed: extract_order_items extract_orders extract_payments", "(fleet)  success 1, upstream_failed 2"} {
		if !strings.Contains(buf.String(), want) {
			t.Errorf("status lacks %q:\n%s", want, buf.String())
		}
	}

	// 3. the shard is back: rerun clears exactly its failed tasks, and the run succeeds
	if err := f.StartShard(ctx, "s02"); err != nil {
		t.Fatal(err)
	}
	buf.Reset()
	if err := Run(ctx, env, []string{"rerun", "--airflow-url", home.URL(), "--shard", "s01", "--run", run.RunID}); err == nil || !strings.Contains(err.Error(), "shard s01 has no failed task") {
		t.Errorf("rerun of a healthy shard: %v, want a refusal naming it", err)
	}
	buf.Reset()
	err = Run(ctx, env, []string{"rerun", "--airflow-url", home.URL(), "--shard", "s02", "--run", run.RunID, "--wait", "10m"})
	if err != nil {
		t.Fatalf("rerun: %v\n%s\n%s", err, buf.String(), home.Logs())
	}
	if !strings.Contains(buf.String(), "cleared 11 task instance(s)") || !strings.Contains(buf.String(), "run isolation-w2: success") {
		t.Errorf("rerun output:\n%s", buf.String())
	}
	for _, line := range strings.Split(buf.String(), "\n") {
		if g := dagen.GroupOf(strings.TrimSpace(line)); g != "" && g != "s02" {
			t.Errorf("rerun cleared another shard's task: %s", line)
		}
	}
	after, err := client.TaskInstances(ctx, hourly, run.RunID)
	if err != nil {
		t.Fatal(err)
	}
	for _, ti := range after {
		if ti.State != airflow.StateSuccess {
			t.Errorf("after rerun %s: %s", ti.TaskID, ti.State)
		}
		if g := dagen.GroupOf(ti.TaskID); g != "s02" && g != "" && ti.TryNumber != tries[ti.TaskID] {
			t.Errorf("%s of another shard ran again (try %d, was %d)", ti.TaskID, ti.TryNumber, tries[ti.TaskID])
		}
	}
	equalSources(t, ctx, f, reg, wh, w2, nil)
	equalSources(t, ctx, f, reg, wh, w1, nil)
	noDuplicates(t, wh, reg)

	// pause and unpause through the API
	buf.Reset()
	if err := Run(ctx, env, []string{"pause", "--airflow-url", home.URL(), "--dag", "hourly"}); err != nil || !strings.Contains(buf.String(), hourly+": paused") {
		t.Errorf("pause: %v\n%s", err, buf.String())
	}
	if d, err := client.GetDAG(ctx, hourly); err != nil || !d.IsPaused {
		t.Errorf("after pause: %+v %v", d, err)
	}
	buf.Reset()
	if err := Run(ctx, env, []string{"unpause", "--airflow-url", home.URL(), "--dag", "hourly"}); err != nil || !strings.Contains(buf.String(), hourly+": unpaused") {
		t.Errorf("unpause: %v\n%s", err, buf.String())
	}
}

// fill writes 40 orders, 40 items and 40 payments of those orders in window [t0, t0 + window) on shard
// id, all of customers it owns then.
func fill(t *testing.T, ctx context.Context, f *fleet.Fleet, reg *registry.Registry, id string, t0 time.Time, seed string) {
	t.Helper()
	sh, _ := f.Shard(id)
	conn, err := pgx.Connect(ctx, sh.AdminDSN)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close(ctx)
	custs := extracttest.CustomersOwnedBy(reg, id, t0, 8, 1)
	for _, tb := range reg.Tables {
		// a payment's order_id is md5('o' || its seed || i): the orders and items of the
		// same i get the seed "o" + seed, so every payment and item has its order
		key := "o" + id + seed
		if tb.Name == "payments" {
			key = id + seed
		}
		spec := extracttest.Spec{Table: tb.Name, Rows: 40, From: t0, To: t0.Add(reg.Extract.Window.Duration), Customers: custs, Seed: key}
		if err := extracttest.Fill(ctx, conn, reg, spec); err != nil {
			t.Fatal(err)
		}
	}
}

// equalSources checks, per table, that the warehouse's batch rows of window [t0, t0 +
// window) equal the union of the shards' rows of that window (count and checksum over
// key and version), leaving out the shards in skip on both sides.
func equalSources(t *testing.T, ctx context.Context, f *fleet.Fleet, reg *registry.Registry, whPath string, t0 time.Time, skip map[string]bool) {
	t.Helper()
	t1 := t0.Add(reg.Extract.Window.Duration)
	db, err := sql.Open("duckdb", whPath+"?access_mode=READ_ONLY")
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	for _, tb := range reg.Tables {
		srcCount, srcSum := int64(0), new(big.Int)
		pc, ps := landing.ChecksumSQL(landing.Postgres, tb.PrimaryKey, tb.Version)
		for _, sh := range f.Shards {
			if skip[sh.ID] {
				continue
			}
			conn, err := pgx.Connect(ctx, sh.AdminDSN)
			if err != nil {
				t.Fatal(err)
			}
			var n int64
			var sum string
			err = conn.QueryRow(ctx, "SELECT "+pc+", "+ps+" FROM "+tb.Name+" WHERE "+tb.Watermark+" >= $1 AND "+tb.Watermark+" < $2", t0, t1).Scan(&n, &sum)
			conn.Close(ctx)
			if err != nil {
				t.Fatal(err)
			}
			v, _ := new(big.Int).SetString(sum, 10)
			srcCount += n
			srcSum.Add(srcSum, v)
		}
		dc, ds := landing.ChecksumSQL(landing.DuckDB, tb.PrimaryKey, tb.Version)
		args := []any{t0, t1}
		q := "SELECT " + dc + ", " + ds + " FROM raw." + tb.Name + " WHERE _source = 'batch' AND _window_start = ? AND _window_end = ?"
		for id := range skip {
			q += " AND _shard <> ?"
			args = append(args, id)
		}
		var n int64
		var sum string
		if err := db.QueryRow(q, args...).Scan(&n, &sum); err != nil {
			t.Fatalf("warehouse %s: %v", tb.Name, err)
		}
		if n != srcCount || sum != srcSum.String() {
			t.Errorf("window %s table %s: warehouse %d rows checksum %s, sources %d rows checksum %s", t0.Format(time.RFC3339), tb.Name, n, sum, srcCount, srcSum)
		}
		if srcCount == 0 {
			t.Errorf("window %s table %s: no source rows (fixture broken)", t0.Format(time.RFC3339), tb.Name)
		}
	}
}

// noDuplicates: no (key, version) is in the warehouse twice, and every landed file was
// loaded once.
func noDuplicates(t *testing.T, whPath string, reg *registry.Registry) {
	t.Helper()
	db, err := sql.Open("duckdb", whPath+"?access_mode=READ_ONLY")
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	for _, tb := range reg.Tables {
		key := strings.Join(append(append([]string{}, tb.PrimaryKey...), tb.Version), ", ")
		var dups int
		if err := db.QueryRow("SELECT count(*) FROM (SELECT " + key + " FROM raw." + tb.Name + " GROUP BY " + key + " HAVING count(*) > 1)").Scan(&dups); err != nil {
			t.Fatal(err)
		}
		if dups != 0 {
			t.Errorf("raw.%s: %d (key, version) pairs loaded twice", tb.Name, dups)
		}
	}
}

func lastLines(s string, n int) string {
	lines := strings.Split(s, "\n")
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	return strings.Join(lines, "\n")
}

//go:build airflowe2e

package shardctl

import (
	"bytes"
	"context"
	"database/sql"
	"fmt"
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
	"github.com/shopsphere/shardflow/internal/cdc/cdctest"
	"github.com/shopsphere/shardflow/internal/dagen"
	"github.com/shopsphere/shardflow/internal/extract/extracttest"
	"github.com/shopsphere/shardflow/internal/fleet"
	"github.com/shopsphere/shardflow/internal/fleet/fleettest"
	"github.com/shopsphere/shardflow/internal/landing"
	"github.com/shopsphere/shardflow/internal/registry"
	"github.com/shopsphere/shardflow/internal/testenv"
)

const e2eTokenKey = "airflow-e2e-tokenizer-key-0123456789abcdef"

// The test's timeline. Its registry has 12-hour extract windows (the committed one has
// 1h) so that a finance day is two hourly-DAG runs per shard, not 24.
var (
	e2eWindow = 12 * time.Hour
	// financeDay is the UTC day the finance DAG runs for: windows wA and wB.
	financeDay = time.Date(2026, 3, 10, 0, 0, 0, 0, time.UTC)
	wA         = financeDay
	wB         = financeDay.Add(e2eWindow)
	// w1 runs through `airflow dags test`, whose run has logical date w1's end (a manual
	// run processes the window before it): two days before, so no finance sensor of
	// financeDay mistakes it for one of its windows.
	w1 = financeDay.Add(-48 * time.Hour)
	// The backfill range: three windows of shard s01 after the finance day.
	backfillFrom = financeDay.Add(24 * time.Hour)
	backfillTo   = backfillFrom.Add(3 * e2eWindow)
)

// airflowRig is what every phase of TestAirflowDAGs shares: one registry, one 4-shard
// fleet, one CDC stack (Kafka + Connect with Debezium), one DAG folder rendered from
// the registry, one Airflow home, one lake and one warehouse.
type airflowRig struct {
	root, bin, work string
	regPath, wh     string
	dbt             string
	reg             *registry.Registry
	f               *fleet.Fleet
	stack           *cdctest.Stack
	home            *airflowtest.Home
	client          *airflow.Client
	vars            map[string]string // shardctl's environment
}

func (r *airflowRig) dag(kind string) string { return dagen.DAGID(r.reg.Fleet, kind) }

// shardctl runs a shardctl command against the rig's registry and Airflow and returns
// what it printed.
func (r *airflowRig) shardctl(ctx context.Context, args ...string) (string, error) {
	var buf bytes.Buffer
	env := Env{Registry: r.regPath, Name: "local", Stdout: &buf, Stderr: &buf, Vars: r.vars}
	err := Run(ctx, env, args)
	return buf.String(), err
}

func newAirflowRig(t *testing.T) *airflowRig {
	root := testenv.Root(t)
	r := &airflowRig{root: root, bin: filepath.Join(root, "var", "bin"), work: t.TempDir(),
		dbt: filepath.Join(root, "var", "venv", "dbt", "bin", "dbt")}
	for _, b := range []string{"extract-window", "load", "dq", "tokenize"} {
		testenv.Need(t, filepath.Join(r.bin, b), "build")
	}
	testenv.Need(t, r.dbt, "deps-dbt")
	r.stack = cdctest.Start(t)

	// the committed registry with the test's lake, warehouse, CDC stack and window
	text, err := os.ReadFile(filepath.Join(root, "shards.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	r.wh = filepath.Join(r.work, "warehouse.duckdb")
	s := string(text)
	for _, e := range [][2]string{
		{"path: var/lake", "path: " + filepath.Join(r.work, "lake")},
		{"path: var/warehouse.duckdb", "path: " + r.wh},
		{"window: 1h", "window: " + e2eWindow.String()},
		{"batch_late: 2h ", "batch_late: 36h "}, // longer than the window
		// no catchup: the scheduler must run only the windows the test triggers
		{"  start: 2026-12-01T00:00:00Z\n", ""},
		{`brokers: ["127.0.0.1:19092"]`, "brokers: " + yamlList(r.stack.Brokers)},
		{`connect_url: "http://127.0.0.1:18083"`, fmt.Sprintf("connect_url: %q", r.stack.ConnectURL)},
	} {
		if !strings.Contains(s, e[0]) {
			t.Fatalf("shards.yaml has no %q to replace", e[0])
		}
		s = strings.Replace(s, e[0], e[1], 1)
	}
	r.regPath = filepath.Join(r.work, "shards.yaml")
	if err := os.WriteFile(r.regPath, []byte(s), 0o644); err != nil {
		t.Fatal(err)
	}
	r.reg = fleettest.Load(t, r.regPath)

	// DAGs rendered from this registry, with a short retry policy (only exit 75 retries)
	// and finance sensors that look every 10 seconds
	dags := filepath.Join(r.work, "dags")
	set, err := dagen.Render(r.reg, dagen.Options{Retries: 1, RetryDelay: time.Second, MaxRetryDelay: 2 * time.Second, FinancePoke: 10 * time.Second}, dags)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := set.Write(); err != nil {
		t.Fatal(err)
	}

	ctx := context.Background()
	r.f = fleettest.Start(t, r.reg)
	// each window's rows are written just before its run: dq's cross-shard freshness
	// check fails a run while the sources hold rows of later windows
	r.fillAll(t, ctx, w1, "w1")
	vars := map[string]string{
		"SHARDFLOW_REGISTRY":     r.regPath,
		"SHARDFLOW_BIN":          r.bin,
		"SHARDFLOW_REPO":         root,
		"SHARDFLOW_TOKEN_KEY":    e2eTokenKey,
		"SHARDFLOW_CODE_VERSION": "airflow-e2e",
	}
	for k, v := range r.f.Env() {
		vars[k] = v
	}
	r.home = airflowtest.New(t, filepath.Join(dags, "local"), vars)
	// the operator's environment: `connectors secrets` writes the transform's key from it
	r.vars = map[string]string{"SHARDFLOW_AIRFLOW_USERNAME": airflowtest.User, "SHARDFLOW_AIRFLOW_PASSWORD": airflowtest.Password,
		"SHARDFLOW_TOKEN_KEY": e2eTokenKey}
	for k, v := range r.f.Env() {
		r.vars[k] = v
	}
	return r
}

// TestAirflowDAGs runs the generated local-target DAGs in a real Airflow 3 over a real
// 4-shard fleet, phase after phase on the same fleet, Airflow and warehouse:
//
//   - hourly: `airflow dags test` runs the batch path for one window; the warehouse
//     equals the sources (count + checksum per table);
//   - isolation: the finance day's first window loads on every shard; with shard s02
//     stopped, the run of its second window fails only s02's group;
//   - finance waits: the finance run of that day waits in wait_s02 only, whose log
//     names s02 and the windows; its deadline alert is attached to the run (reference
//     logical date, 1 day + 05:00) and, the day being past, fires its callback;
//   - rerun: s02 back, `shardctl rerun` clears exactly its failed tasks and the run
//     succeeds without duplicates;
//   - finance: the finance run then completes, records a pinned run of that day, and
//     `shardctl finance verify` passes on it;
//   - backfill: `shardctl backfill` over three windows of s01 makes the warehouse equal
//     the source there; the same backfill again leaves every load-history entry's rows
//     and checksum as they were and adds no duplicate;
//   - cdc: with Debezium connectors applied, traffic (inserts, updates, soft and hard
//     deletes) reaches fact_orders through `airflow dags test` of the CDC micro-batch,
//     twice; fact_orders then equals the shards' orders (count, sum, checksum).
func TestAirflowDAGs(t *testing.T) {
	r := newAirflowRig(t)
	for _, p := range []struct {
		name string
		run  func(*testing.T, *airflowRig)
	}{
		{"hourly_dags_test", phaseHourly},
		{"isolation", phaseIsolation},
		{"finance_waits_for_s02", phaseFinanceWaits},
		{"rerun", phaseRerun},
		{"finance_completes", phaseFinanceCompletes},
		{"backfill", phaseBackfill},
		{"pause", phasePause},
		{"cdc_microbatch", phaseCDC},
	} {
		if !t.Run(p.name, func(t *testing.T) { p.run(t, r) }) {
			return // each phase builds on the ones before
		}
	}
}

// phaseHourly: `airflow dags test` of the hourly DAG, the whole batch path for w1 (its
// logical date is w1's end: a manual run processes the last window before it).
func phaseHourly(t *testing.T, r *airflowRig) {
	ctx, cancel := context.WithTimeout(context.Background(), 15*time.Minute)
	defer cancel()
	hourly := r.dag(dagen.Hourly)
	out, err := r.home.Airflow(ctx, "dags", "test", hourly, w1.Add(e2eWindow).Format(time.RFC3339))
	if err != nil || !strings.Contains(out, "state=success") && !strings.Contains(out, "DagRunState.SUCCESS") {
		t.Fatalf("airflow dags test %s: %v\n%s", hourly, err, lastLines(out, 80))
	}
	equalSources(t, ctx, r.f, r.reg, r.wh, w1, nil)
}

// phaseIsolation: window wA on every shard, then wB with s02 stopped: only s02's group
// fails, the others load wB and pass dq.
func phaseIsolation(t *testing.T, r *airflowRig) {
	ctx := context.Background()
	hourly := r.dag(dagen.Hourly)
	r.home.Start(hourly, r.dag(dagen.FinanceDaily), r.dag(dagen.Backfill), r.dag(dagen.CDC))
	client, err := r.home.Client()
	if err != nil {
		t.Fatal(err)
	}
	r.client = client

	// runs made like the scheduler's: logical date = the window's start
	r.fillAll(t, ctx, wA, "wa")
	wctx, wcancel := context.WithTimeout(ctx, 12*time.Minute)
	defer wcancel()
	run, err := client.TriggerRun(ctx, hourly, airflow.Trigger{RunID: "window-a", LogicalDate: wA, DataIntervalStart: wA, DataIntervalEnd: wA.Add(e2eWindow)})
	if err != nil {
		t.Fatal(err)
	}
	if done, err := client.WaitRun(wctx, hourly, run.RunID, 2*time.Second); err != nil || done.State != airflow.StateSuccess {
		t.Fatalf("run of window a: %+v %v\n%s", done, err, r.home.Logs())
	}
	equalSources(t, ctx, r.f, r.reg, r.wh, wA, nil)

	r.fillAll(t, ctx, wB, "wb")
	if err := r.f.StopShard(ctx, "s02"); err != nil {
		t.Fatal(err)
	}
	run, err = client.TriggerRun(ctx, hourly, airflow.Trigger{RunID: "isolation-wb", LogicalDate: wB, DataIntervalStart: wB, DataIntervalEnd: wB.Add(e2eWindow)})
	if err != nil {
		t.Fatal(err)
	}
	done, err := client.WaitRun(wctx, hourly, run.RunID, 2*time.Second)
	if err != nil || done.State != airflow.StateFailed {
		t.Fatalf("run with s02 down: %+v %v\n%s", done, err, r.home.Logs())
	}
	tis, err := client.TaskInstances(ctx, hourly, run.RunID)
	if err != nil {
		t.Fatal(err)
	}
	for _, ti := range tis {
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
				t.Errorf("%s: %s, want success (a shard down must not fail another shard's group)\n%s", ti.TaskID, ti.State, r.home.TaskLog(hourly, run.RunID, ti.TaskID))
			}
		}
	}
	if t.Failed() {
		t.FailNow()
	}
	equalSources(t, ctx, r.f, r.reg, r.wh, wB, map[string]bool{"s02": true})

	// shardctl status shows the failed group
	out, err := r.shardctl(ctx, "status", "--only", "airflow", "--airflow-url", r.home.URL(), "--runs", "1")
	if err != nil {
		t.Fatalf("status: %v\n%s", err, out)
	}
	for _, want := range []string{"run isolation-wb: failed", "s00      success 9", "s02      failed 3, upstream_failed 6; failed: extract_order_items extract_orders extract_payments", "(fleet)  success 1, upstream_failed 2"} {
		if !strings.Contains(out, want) {
			t.Errorf("status lacks %q:\n%s", want, out)
		}
	}
}

// financeRunID is the finance run of financeDay the test triggers.
const financeRunID = "finance-2026-03-10"

// phaseFinanceWaits: the finance run of the day waits for s02 only, and its deadline
// alert is attached to the run.
func phaseFinanceWaits(t *testing.T, r *airflowRig) {
	ctx := context.Background()
	fin := r.dag(dagen.FinanceDaily)
	// the run the scheduler makes at financeDay+1 00:00: logical date and interval start
	// the day itself
	if _, err := r.client.TriggerRun(ctx, fin, airflow.Trigger{RunID: financeRunID, LogicalDate: financeDay, DataIntervalStart: financeDay, DataIntervalEnd: financeDay.Add(24 * time.Hour)}); err != nil {
		t.Fatal(err)
	}
	// every sensor but wait_s02 succeeds; wait_s02 pokes and is rescheduled
	poking := "Poking for task_group 's02' in dag '" + r.dag(dagen.Hourly) + "' on " + wA.Format("2006-01-02T15:04:05-07:00") + "," + wB.Format("2006-01-02T15:04:05-07:00")
	deadline := time.Now().Add(5 * time.Minute)
	for {
		tis, err := r.client.TaskInstances(ctx, fin, financeRunID)
		if err != nil {
			t.Fatal(err)
		}
		states := map[string]string{}
		for _, ti := range tis {
			states[ti.TaskID] = ti.State
		}
		others := states["wait_s00"] == airflow.StateSuccess && states["wait_s01"] == airflow.StateSuccess && states["wait_s03"] == airflow.StateSuccess
		log := r.home.TaskLog(fin, financeRunID, "wait_s02")
		if others && states["wait_s02"] == "up_for_reschedule" && strings.Contains(log, poking) {
			if s := states["dbt_finance"]; s != "" && s != "none" && s != "scheduled" {
				t.Errorf("dbt_finance is %s while s02 is incomplete", s)
			}
			t.Logf("wait_s02 (up_for_reschedule) logs: %s", poking)
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("finance run: want wait_s02 waiting and the other sensors done, have %v\nwait_s02 log:\n%s", states, lastLines(log, 30))
		}
		time.Sleep(3 * time.Second)
	}

	// the deadline alert: defined on the DAG, attached to this run at logical date +
	// 1 day + 05:00, and (that instant being past) missed with its callback run
	var alerts struct {
		Alerts []struct {
			Name      string  `json:"name"`
			Reference string  `json:"reference_type"`
			Interval  float64 `json:"interval"`
		} `json:"deadline_alerts"`
	}
	if err := r.home.GetJSON(ctx, "/ui/dags/"+fin+"/deadlineAlerts", &alerts); err != nil {
		t.Fatal(err)
	}
	if len(alerts.Alerts) != 1 || alerts.Alerts[0].Name != "finance_ready_by" || alerts.Alerts[0].Reference != "DagRunLogicalDateDeadline" || alerts.Alerts[0].Interval != (29*time.Hour).Seconds() {
		t.Errorf("deadline alerts of %s: %+v, want one finance_ready_by, DagRunLogicalDateDeadline + %v s", fin, alerts.Alerts, (29 * time.Hour).Seconds())
	}
	want := financeDay.Add(24*time.Hour + 5*time.Hour)
	deadline = time.Now().Add(2 * time.Minute)
	for {
		var got struct {
			Deadlines []struct {
				Time   time.Time `json:"deadline_time"`
				Missed bool      `json:"missed"`
				Alert  string    `json:"alert_name"`
				RunID  string    `json:"dag_run_id"`
			} `json:"deadlines"`
		}
		if err := r.home.GetJSON(ctx, "/ui/dags/"+fin+"/dagRuns/"+financeRunID+"/deadlines", &got); err != nil {
			t.Fatal(err)
		}
		if len(got.Deadlines) != 1 || !got.Deadlines[0].Time.Equal(want) || got.Deadlines[0].Alert != "finance_ready_by" {
			t.Fatalf("deadlines of run %s: %+v, want one finance_ready_by at %s", financeRunID, got.Deadlines, want)
		}
		cb := r.home.CallbackLog(fin, financeRunID)
		if got.Deadlines[0].Missed && strings.Contains(cb, "finance run "+financeRunID+" of "+r.reg.Fleet+" not done at 05:00 UTC") {
			t.Logf("deadline %s missed; callback logged the run", got.Deadlines[0].Time.Format(time.RFC3339))
			break
		}
		if time.Now().After(deadline) {
			var files []string
			_ = filepath.WalkDir(filepath.Join(r.home.Dir, "logs"), func(p string, d os.DirEntry, err error) error {
				if err == nil && !d.IsDir() && !strings.Contains(p, "dag_id=") {
					files = append(files, p)
				}
				return nil
			})
			t.Fatalf("deadline of run %s: missed=%v; callback log:\n%s\nlog files: %v\n%s", financeRunID, got.Deadlines[0].Missed, lastLines(cb, 30), files, r.home.Logs())
		}
		time.Sleep(3 * time.Second)
	}
}

// phaseRerun: s02 is back; `shardctl rerun` clears exactly its failed tasks and the run
// succeeds, no other shard's task ran again, no duplicates.
func phaseRerun(t *testing.T, r *airflowRig) {
	ctx := context.Background()
	hourly := r.dag(dagen.Hourly)
	const runID = "isolation-wb"
	before, err := r.client.TaskInstances(ctx, hourly, runID)
	if err != nil {
		t.Fatal(err)
	}
	tries := map[string]int{}
	for _, ti := range before {
		tries[ti.TaskID] = ti.TryNumber
	}
	if err := r.f.StartShard(ctx, "s02"); err != nil {
		t.Fatal(err)
	}
	if _, err := r.shardctl(ctx, "rerun", "--airflow-url", r.home.URL(), "--shard", "s01", "--run", runID); err == nil || !strings.Contains(err.Error(), "shard s01 has no failed task") {
		t.Errorf("rerun of a healthy shard: %v, want a refusal naming it", err)
	}
	out, err := r.shardctl(ctx, "rerun", "--airflow-url", r.home.URL(), "--shard", "s02", "--run", runID, "--wait", "10m")
	if err != nil {
		t.Fatalf("rerun: %v\n%s\n%s", err, out, r.home.Logs())
	}
	if !strings.Contains(out, "cleared 11 task instance(s)") || !strings.Contains(out, "run "+runID+": success") {
		t.Errorf("rerun output:\n%s", out)
	}
	for _, line := range strings.Split(out, "\n") {
		if g := dagen.GroupOf(strings.TrimSpace(line)); g != "" && g != "s02" {
			t.Errorf("rerun cleared another shard's task: %s", line)
		}
	}
	after, err := r.client.TaskInstances(ctx, hourly, runID)
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
	for _, w := range []time.Time{w1, wA, wB} {
		equalSources(t, ctx, r.f, r.reg, r.wh, w, nil)
	}
	noDuplicates(t, r.wh, r.reg)

	// pause and unpause through the API
	if out, err := r.shardctl(ctx, "pause", "--airflow-url", r.home.URL(), "--dag", "hourly"); err != nil || !strings.Contains(out, hourly+": paused") {
		t.Errorf("pause: %v\n%s", err, out)
	}
	if d, err := r.client.GetDAG(ctx, hourly); err != nil || !d.IsPaused {
		t.Errorf("after pause: %+v %v", d, err)
	}
	if out, err := r.shardctl(ctx, "unpause", "--airflow-url", r.home.URL(), "--dag", "hourly"); err != nil || !strings.Contains(out, hourly+": unpaused") {
		t.Errorf("unpause: %v\n%s", err, out)
	}
}

// phaseFinanceCompletes: with s02's windows loaded, wait_s02 succeeds, dbt builds the
// finance marts as a pinned run of the day, and `shardctl finance verify` passes.
func phaseFinanceCompletes(t *testing.T, r *airflowRig) {
	ctx := context.Background()
	fin := r.dag(dagen.FinanceDaily)
	wctx, cancel := context.WithTimeout(ctx, 10*time.Minute)
	defer cancel()
	done, err := r.client.WaitRun(wctx, fin, financeRunID, 3*time.Second)
	if err != nil || done.State != airflow.StateSuccess {
		t.Fatalf("finance run: %+v %v\n%s\n%s", done, err, r.home.TaskLog(fin, financeRunID, "dbt_finance"), r.home.Logs())
	}
	finance := []string{"finance", "--dbt", r.dbt, "--project", filepath.Join(r.root, "dbt")}
	out, err := r.shardctl(ctx, append(append([]string{}, finance[0], "runs"), finance[1:]...)...)
	if err != nil {
		t.Fatalf("finance runs: %v\n%s", err, out)
	}
	// one run (dbt show cuts long cells: the days are checked in verify's line)
	if n := strings.Count(out, "| airflow-e2e "); n != 1 {
		t.Errorf("finance runs: %d runs at code version airflow-e2e, want 1:\n%s", n, out)
	}
	// the latest run: of the finance day, at the code version the worker was given
	day := financeDay.Format("2006-01-02")
	out, err = r.shardctl(ctx, append(append([]string{}, finance[0], "verify"), finance[1:]...)...)
	if err != nil || !strings.Contains(out, ": reproducible") || !strings.Contains(out, "code airflow-e2e") || !strings.Contains(out, "days "+day+".."+day) {
		t.Fatalf("finance verify: %v\n%s", err, out)
	}
	t.Logf("%s", strings.TrimSpace(out))
}

// phaseBackfill: `shardctl backfill` over three windows of s01 (all tables), then the
// same backfill once more through the API: the warehouse equals the source in the
// range, and after the second run the load history holds the same files with the same
// rows and checksums, the raw tables the same number of rows, no duplicate.
func phaseBackfill(t *testing.T, r *airflowRig) {
	ctx := context.Background()
	bf := r.dag(dagen.Backfill)
	var windows []time.Time
	for w := backfillFrom; w.Before(backfillTo); w = w.Add(e2eWindow) {
		fill(t, ctx, r.f, r.reg, "s01", w, "bf"+w.Format("0102T15"))
		windows = append(windows, w)
	}
	args := []string{"backfill", "--airflow-url", r.home.URL(), "--shard", "s01", "--table", "all",
		"--from", backfillFrom.Format(time.RFC3339), "--to", backfillTo.Format(time.RFC3339)}
	out, err := r.shardctl(ctx, args...)
	runID := "shardflow-backfill__s01__all__" + backfillFrom.Format("20060102T1504Z") + "__" + backfillTo.Format("20060102T1504Z")
	if err != nil || !strings.Contains(out, "triggered "+bf+" run "+runID) {
		t.Fatalf("backfill: %v\n%s", err, out)
	}
	wctx, cancel := context.WithTimeout(ctx, 15*time.Minute)
	defer cancel()
	waitBackfill(t, wctx, r, runID, len(windows))
	others := map[string]bool{"s00": true, "s02": true, "s03": true}
	for _, w := range windows {
		equalSources(t, ctx, r.f, r.reg, r.wh, w, others)
	}
	noDuplicates(t, r.wh, r.reg)
	history := loadHistory(t, r.wh, "s01")
	rows := rawRows(t, r.wh, r.reg)

	// the same range again: shardctl finds its run; a second run through the API
	// re-extracts and reloads every window, and nothing changes in the warehouse
	out, err = r.shardctl(ctx, args...)
	if err != nil || !strings.Contains(out, "run "+runID+" exists already: success") {
		t.Errorf("backfill again: %v\n%s", err, out)
	}
	conf := map[string]any{"shard": "s01", "table": "all", "from": backfillFrom.Format(time.RFC3339), "to": backfillTo.Format(time.RFC3339)}
	if _, err := r.client.TriggerRun(ctx, bf, airflow.Trigger{RunID: "backfill-again", Conf: conf}); err != nil {
		t.Fatal(err)
	}
	waitBackfill(t, wctx, r, "backfill-again", len(windows))
	// every file was re-extracted at the same key with the same rows: the same bytes
	// (nothing of the run is in the data, decisions/0019), so its load skipped it
	again := loadHistory(t, r.wh, "s01")
	for key, e := range again {
		before, ok := history[key]
		switch {
		case !ok:
			t.Errorf("second backfill loaded a new file %s", key)
		case e.rows != before.rows || e.checksum != before.checksum:
			t.Errorf("%s: %d rows checksum %s after the second backfill, %d rows checksum %s before", key, e.rows, e.checksum, before.rows, before.checksum)
		case e.sha != before.sha:
			t.Errorf("%s: re-extracted with the same rows but other bytes (sha %s, was %s): it was reloaded", key, e.sha, before.sha)
		}
	}
	if len(again) != len(history) {
		t.Errorf("load history of s01: %d files after the second backfill, %d before", len(again), len(history))
	}
	t.Logf("second backfill: %d files of s01 re-extracted byte-identical; load skipped them", len(again))
	if got := rawRows(t, r.wh, r.reg); got != rows {
		t.Errorf("raw row counts changed by the second backfill: %s, were %s", got, rows)
	}
	for _, w := range windows {
		equalSources(t, ctx, r.f, r.reg, r.wh, w, others)
	}
	noDuplicates(t, r.wh, r.reg)
}

// waitBackfill waits for a backfill run and checks its tasks: s01 ran extract, load and
// dq for every (table, window) of the range, the other shards planned nothing.
func waitBackfill(t *testing.T, ctx context.Context, r *airflowRig, runID string, windows int) {
	t.Helper()
	bf := r.dag(dagen.Backfill)
	done, err := r.client.WaitRun(ctx, bf, runID, 3*time.Second)
	if err != nil || done.State != airflow.StateSuccess {
		t.Fatalf("backfill run %s: %+v %v\n%s", runID, done, err, r.home.Logs())
	}
	tis, err := r.client.TaskInstances(ctx, bf, runID)
	if err != nil {
		t.Fatal(err)
	}
	ran := map[string]int{}
	for _, ti := range tis {
		if ti.State == airflow.StateSuccess && ti.MapIndex >= 0 {
			ran[ti.TaskID]++
		}
	}
	n := windows * len(r.reg.Tables)
	for _, id := range []string{"s01.window.extract", "s01.window.load", "s01.window.dq"} {
		if ran[id] != n {
			t.Errorf("backfill run %s: %s succeeded for %d (table, window) pairs, want %d (%v)", runID, id, ran[id], n, ran)
		}
	}
	for id := range ran {
		if dagen.GroupOf(id) != "s01" {
			t.Errorf("backfill run %s: %s of another shard ran", runID, id)
		}
	}
}

// historyEntry is one file of raw._load_history.
type historyEntry struct {
	rows          int64
	checksum, sha string
}

// loadHistory is the load history of a shard's batch files by key.
func loadHistory(t *testing.T, whPath, shard string) map[string]historyEntry {
	t.Helper()
	db := openWarehouse(t, whPath)
	defer db.Close()
	rows, err := db.Query("SELECT file_key, rows, checksum, data_sha256 FROM raw._load_history WHERE shard = ? AND source = 'batch'", shard)
	if err != nil {
		t.Fatal(err)
	}
	defer rows.Close()
	out := map[string]historyEntry{}
	for rows.Next() {
		var key string
		var e historyEntry
		if err := rows.Scan(&key, &e.rows, &e.checksum, &e.sha); err != nil {
			t.Fatal(err)
		}
		out[key] = e
	}
	if err := rows.Err(); err != nil {
		t.Fatal(err)
	}
	return out
}

// rawRows is the row count of every raw table.
func rawRows(t *testing.T, whPath string, reg *registry.Registry) string {
	t.Helper()
	db := openWarehouse(t, whPath)
	defer db.Close()
	var parts []string
	for _, tb := range reg.Tables {
		var n int64
		if err := db.QueryRow("SELECT count(*) FROM raw." + tb.Name).Scan(&n); err != nil {
			t.Fatal(err)
		}
		parts = append(parts, fmt.Sprintf("%s=%d", tb.Name, n))
	}
	return strings.Join(parts, " ")
}

func openWarehouse(t *testing.T, whPath string) *sql.DB {
	t.Helper()
	db, err := sql.Open("duckdb", whPath+"?access_mode=READ_ONLY")
	if err != nil {
		t.Fatal(err)
	}
	return db
}

// fillAll fills window t0 on every shard.
func (r *airflowRig) fillAll(t *testing.T, ctx context.Context, t0 time.Time, seed string) {
	t.Helper()
	for _, sh := range r.f.Shards {
		fill(t, ctx, r.f, r.reg, sh.ID, t0, seed)
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
	db := openWarehouse(t, whPath)
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
	db := openWarehouse(t, whPath)
	defer db.Close()
	for _, tb := range reg.Tables {
		key := strings.Join(append(append([]string{}, tb.PrimaryKey...), tb.Version), ", ")
		var dups int
		if err := db.QueryRow("SELECT count(*) FROM (SELECT " + key + " FROM raw." + tb.Name + " WHERE _source = 'batch' GROUP BY " + key + " HAVING count(*) > 1)").Scan(&dups); err != nil {
			t.Fatal(err)
		}
		if dups != 0 {
			t.Errorf("raw.%s: %d (key, version) pairs loaded twice by the batch path", tb.Name, dups)
		}
	}
}

// yamlList writes a YAML flow sequence of quoted strings.
func yamlList(xs []string) string {
	q := make([]string, len(xs))
	for i, x := range xs {
		q[i] = fmt.Sprintf("%q", x)
	}
	return "[" + strings.Join(q, ", ") + "]"
}

func lastLines(s string, n int) string {
	lines := strings.Split(s, "\n")
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	return strings.Join(lines, "\n")
}

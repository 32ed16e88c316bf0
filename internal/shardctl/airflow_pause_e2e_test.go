//go:build airflowe2e

package shardctl

import (
	"context"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/shopsphere/shardflow/internal/airflow"
	"github.com/shopsphere/shardflow/internal/dagen"
)

// wP is the window of the pause phase, after the backfill's.
var wP = backfillTo.Add(24 * time.Hour)

// phasePause: `shardctl shard pause s01` while the hourly DAG runs: s01's group is
// skipped (extract-window exits 99), every other group succeeds and the fleet's dbt
// build runs without it; status shows the pause. `shardctl shard resume s01` clears the
// pause and reruns the skipped group in that run: the window lands on every shard.
func phasePause(t *testing.T, r *airflowRig) {
	ctx := context.Background()
	hourly := r.dag(dagen.Hourly)
	if out, err := r.shardctl(ctx, "shard", "pause", "s01", "--reason", "e2e maintenance", "--by", "e2e"); err != nil || !strings.Contains(out, "shard s01 paused by e2e") {
		t.Fatalf("shard pause: %v\n%s", err, out)
	}
	r.fillAll(t, ctx, wP, "wp")
	wctx, cancel := context.WithTimeout(ctx, 12*time.Minute)
	defer cancel()
	run, err := r.client.TriggerRun(ctx, hourly, airflow.Trigger{RunID: "paused-wp", LogicalDate: wP, DataIntervalStart: wP, DataIntervalEnd: wP.Add(e2eWindow)})
	if err != nil {
		t.Fatal(err)
	}
	done, err := r.client.WaitRun(wctx, hourly, run.RunID, 2*time.Second)
	if err != nil || done.State != airflow.StateSuccess {
		t.Fatalf("run with s01 paused: %+v %v\n%s", done, err, r.failedTasks(ctx, hourly, run.RunID))
	}
	tis, err := r.client.TaskInstances(ctx, hourly, run.RunID)
	if err != nil {
		t.Fatal(err)
	}
	for _, ti := range tis {
		want := airflow.StateSuccess
		if dagen.GroupOf(ti.TaskID) == "s01" {
			want = airflow.StateSkipped
		}
		if ti.State != want {
			t.Errorf("%s: %s, want %s (a paused shard skips only its own group)", ti.TaskID, ti.State, want)
		}
	}
	if t.Failed() {
		t.FailNow()
	}
	equalSources(t, ctx, r.f, r.reg, r.wh, wP, map[string]bool{"s01": true})
	out, err := r.shardctl(ctx, "status", "--only", "holds")
	if err != nil || !strings.Contains(out, "s01      PAUSED by e2e since") || !strings.Contains(out, "e2e maintenance") {
		t.Fatalf("status --only holds: %v\n%s", err, out)
	}

	out, err = r.shardctl(ctx, "shard", "resume", "s01", "--airflow-url", r.home.URL())
	if err != nil || !strings.Contains(out, "shard s01 resumed") || !strings.Contains(out, "run paused-wp: cleared") {
		t.Fatalf("shard resume: %v\n%s", err, out)
	}
	done, err = r.client.WaitRun(wctx, hourly, run.RunID, 2*time.Second)
	if err != nil || done.State != airflow.StateSuccess {
		t.Fatalf("run after resume: %+v %v\n%s", done, err, r.failedTasks(ctx, hourly, run.RunID))
	}
	tis, err = r.client.TaskInstances(ctx, hourly, run.RunID)
	if err != nil {
		t.Fatal(err)
	}
	for _, ti := range tis {
		if ti.State != airflow.StateSuccess {
			t.Errorf("after resume %s: %s, want success", ti.TaskID, ti.State)
		}
	}
	equalSources(t, ctx, r.f, r.reg, r.wh, wP, nil)
	if out, err := r.shardctl(ctx, "status", "--only", "holds"); err != nil || !strings.Contains(out, "no shard is paused") {
		t.Fatalf("status after resume: %v\n%s", err, out)
	}
}

// failedTasks is every task of the run that did not succeed, with the log of the failed ones.
func (r *airflowRig) failedTasks(ctx context.Context, dagID, runID string) string {
	tis, err := r.client.TaskInstances(ctx, dagID, runID)
	if err != nil {
		return err.Error()
	}
	var b strings.Builder
	for _, ti := range tis {
		if ti.State == airflow.StateSuccess {
			continue
		}
		fmt.Fprintf(&b, "%s: %s\n", ti.TaskID, ti.State)
		if ti.State == airflow.StateFailed {
			b.WriteString(lastLines(r.home.TaskLog(dagID, runID, ti.TaskID), 30) + "\n")
		}
	}
	return b.String()
}

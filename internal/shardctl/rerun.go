package shardctl

import (
	"context"
	"fmt"
	"sort"
	"time"

	"github.com/shopsphere/shardflow/internal/airflow"
	"github.com/shopsphere/shardflow/internal/command"
	"github.com/shopsphere/shardflow/internal/dagen"
	"github.com/shopsphere/shardflow/internal/exitcode"
)

func init() {
	register(Command{
		Name:    "rerun",
		Summary: "clear one shard's failed tasks of a run so Airflow runs them again",
		Usage:   "--shard ID --run RUN_ID [--dag hourly|backfill] [--dry-run] [--wait D]" + airflowUsage,
		Help: `Clears, through the Airflow REST API, exactly the failed (and upstream_failed)
tasks of one shard's task group in one run, plus the fleet-wide tasks after them that
did not run because of it (dbt build, cross-shard dq). Other shards' tasks are never
touched: rerun first asks Airflow for a dry run and refuses if it would clear one.
The run goes back to queued and the scheduler runs the cleared tasks; re-running is
safe (windows land at the same keys, loads are file-level idempotent).

With --wait it then waits up to that long for the run to finish and exits 1 if it
failed again. Runbook: docs/runbooks/shard-down.md.` + airflowHelp,
		Run: runRerun,
	})
}

func runRerun(ctx context.Context, env Env, args []string) error {
	c := commands["rerun"]
	fs := newFlags(c, env)
	var af airflowFlags
	af.add(fs)
	shard := fs.String("shard", "", "shard id (its task group)")
	runID := fs.String("run", "", "the DAG run id")
	kind := fs.String("dag", dagen.Hourly, "which DAG (hourly or backfill: the ones with shard groups)")
	dry := fs.Bool("dry-run", false, "print what would be cleared, clear nothing")
	wait := fs.Duration("wait", 0, "wait this long for the run to finish (0: do not wait)")
	if err := command.Parse(fs, args); err != nil {
		return err
	}
	if *shard == "" || *runID == "" {
		return exitcode.Errorf(exitcode.Usage, "rerun: --shard and --run are required")
	}
	if *kind != dagen.Hourly && *kind != dagen.Backfill {
		return exitcode.Errorf(exitcode.Usage, "rerun: --dag %q has no shard groups (hourly or backfill)", *kind)
	}
	r, cl, err := af.open(env)
	if err != nil {
		return err
	}
	if _, ok := r.Shard(*shard); !ok {
		return exitcode.Errorf(exitcode.Usage, "rerun: shard %q is not in %s", *shard, env.Registry)
	}
	dagID := dagen.DAGID(r.Fleet, *kind)
	tis, err := cl.TaskInstances(ctx, dagID, *runID)
	if err != nil {
		return apiErr("rerun", err)
	}
	if len(tis) == 0 {
		return fmt.Errorf("rerun: run %s of %s has no task instances (is the run id right?)", *runID, dagID)
	}
	var ids []string
	seen := map[string]bool{}
	failedShards := map[string]bool{}
	for _, ti := range tis {
		if ti.State != airflow.StateFailed && ti.State != airflow.StateUpstreamFailed {
			continue
		}
		g := dagen.GroupOf(ti.TaskID)
		if g != "" && ti.State == airflow.StateFailed {
			failedShards[g] = true
		}
		if g == *shard && !seen[ti.TaskID] {
			seen[ti.TaskID] = true
			ids = append(ids, ti.TaskID)
		}
	}
	sort.Strings(ids)
	if len(ids) == 0 {
		others := make([]string, 0, len(failedShards))
		for g := range failedShards {
			others = append(others, g)
		}
		sort.Strings(others)
		return fmt.Errorf("rerun: shard %s has no failed task in run %s of %s (shards with failed tasks: %v)", *shard, *runID, dagID, others)
	}
	req := airflow.Clear{RunID: *runID, TaskIDs: ids, OnlyFailed: true, IncludeDownstream: true, DryRun: true,
		Note: "shardctl rerun --shard " + *shard}
	would, err := cl.ClearTaskInstances(ctx, dagID, req)
	if err != nil {
		return apiErr("rerun", err)
	}
	for _, ti := range would {
		if g := dagen.GroupOf(ti.TaskID); g != "" && g != *shard {
			return fmt.Errorf("rerun: clearing shard %s would also clear %s of shard %s; refusing (clear by hand in the UI if intended)", *shard, ti.TaskID, g)
		}
	}
	if *dry {
		fmt.Fprintf(env.Stdout, "rerun %s run %s shard %s (dry run): would clear %d task instance(s):\n", dagID, *runID, *shard, len(would))
		printTIs(env, would)
		return nil
	}
	req.DryRun = false
	cleared, err := cl.ClearTaskInstances(ctx, dagID, req)
	if err != nil {
		return apiErr("rerun", err)
	}
	fmt.Fprintf(env.Stdout, "rerun %s run %s shard %s: cleared %d task instance(s):\n", dagID, *runID, *shard, len(cleared))
	printTIs(env, cleared)
	if *wait <= 0 {
		return nil
	}
	wctx, cancel := context.WithTimeout(ctx, *wait)
	defer cancel()
	run, err := cl.WaitRun(wctx, dagID, *runID, 2*time.Second)
	if err != nil {
		return exitcode.Wrap(exitcode.Retryable, fmt.Errorf("rerun: %w", err))
	}
	fmt.Fprintf(env.Stdout, "run %s: %s\n", *runID, run.State)
	if run.State != airflow.StateSuccess {
		return fmt.Errorf("rerun: run %s of %s ended %s (shardctl status)", *runID, dagID, run.State)
	}
	return nil
}

func printTIs(env Env, tis []airflow.TaskInstance) {
	sort.Slice(tis, func(i, j int) bool { return tis[i].TaskID < tis[j].TaskID })
	for _, ti := range tis {
		if ti.MapIndex >= 0 {
			fmt.Fprintf(env.Stdout, "  %s[%d]\n", ti.TaskID, ti.MapIndex)
			continue
		}
		fmt.Fprintf(env.Stdout, "  %s\n", ti.TaskID)
	}
}

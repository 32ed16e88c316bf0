package shardctl

import (
	"context"
	"fmt"
	"io"
	"sort"
	"strings"
	"time"

	"github.com/shopsphere/shardflow/internal/airflow"
	"github.com/shopsphere/shardflow/internal/cdc"
	"github.com/shopsphere/shardflow/internal/command"
	"github.com/shopsphere/shardflow/internal/dagen"
	"github.com/shopsphere/shardflow/internal/exitcode"
	"github.com/shopsphere/shardflow/internal/objstore"
	objbackend "github.com/shopsphere/shardflow/internal/objstore/backend"
	"github.com/shopsphere/shardflow/internal/pause"
)

func init() {
	register(Command{
		Name:    "shard",
		Summary: "pause one shard (batch and CDC) without pausing the DAGs, resume it, list the paused ones",
		Usage:   "pause ID --reason TEXT [--by NAME] | resume ID [--runs N] [--no-rerun] | paused" + airflowUsage,
		Help: `pause ID   hold one shard, for maintenance or while a problem is looked at: the DAGs keep
           running for the others. Recorded under control/paused/ in the object store
           with --reason and --by (default $USER). Its hourly windows are skipped
           (extract-window exits 99 before connecting; load and dq follow), the fleet's
           dbt build goes on without them, the finance run of a day waits for them;
           tokenize cdc leaves its partitions at their committed offsets (Kafka keeps
           the changes: resume within the topics' retention). Its lateness alerts are
           held. Pausing a paused shard keeps the first pause.
resume ID  clear the pause, then clear through the Airflow REST API the skipped tasks of
           the shard's group in the hourly runs since the pause (the latest --runs,
           default 200), so Airflow runs its windows again and the finance runs waiting
           for them go on. --no-rerun only clears the pause (then rerun the windows
           with 'shardctl backfill'). CDC resumes by itself at the next micro-batch, or
           within 30s in follow mode.
paused     the paused shards: who, since when, why.

'shardctl status' shows the paused shards and quarantined CDC partitions. Runbook:
docs/runbooks/pause-a-shard.md.` + airflowHelp,
		Run: runShard,
	})
}

func runShard(ctx context.Context, env Env, args []string) error {
	c := commands["shard"]
	if len(args) == 0 || strings.HasPrefix(args[0], "-") {
		fmt.Fprintf(env.Stderr, "usage: shardctl shard %s\n", c.Usage)
		if len(args) > 0 && (args[0] == "-h" || args[0] == "--help") {
			fmt.Fprintf(env.Stderr, "\n%s\n", c.Help)
			return nil
		}
		return exitcode.Errorf(exitcode.Usage, "shard: pause, resume or paused")
	}
	sub, rest := args[0], args[1:]
	var id string
	if sub != "paused" {
		if len(rest) == 0 || strings.HasPrefix(rest[0], "-") {
			return exitcode.Errorf(exitcode.Usage, "shard %s: give the shard id (shardctl shard %s s01 ...)", sub, sub)
		}
		id, rest = rest[0], rest[1:]
	}
	fs := newFlags(c, env)
	var af airflowFlags
	af.add(fs)
	reason := fs.String("reason", "", "pause: why (recorded)")
	by := fs.String("by", env.Vars["USER"], "pause: who (recorded)")
	runs := fs.Int("runs", 200, "resume: how many of the latest hourly runs to look through")
	noRerun := fs.Bool("no-rerun", false, "resume: clear the pause only, rerun nothing in Airflow")
	if err := command.Parse(fs, rest); err != nil {
		return err
	}
	if err := noArgs(fs, "shard "+sub); err != nil {
		return err
	}
	r, e, err := loadEnvironment(env)
	if err != nil {
		return err
	}
	if id != "" {
		if _, ok := r.Shard(id); !ok {
			return exitcode.Errorf(exitcode.Usage, "shard %s: %q is not in %s", sub, id, env.Registry)
		}
	}
	store, err := objbackend.Open(ctx, e.ObjectStore, objbackend.CredentialsFromEnv(env.Vars))
	if err != nil {
		return fmt.Errorf("shard %s: object store: %w", sub, err)
	}
	switch sub {
	case "pause":
		p, err := pause.Set(ctx, store, pause.Pause{Shard: id, Reason: *reason, By: *by})
		if err != nil {
			return err
		}
		fmt.Fprintf(env.Stdout, "shard %s paused by %s since %s (%s): its windows are skipped and its CDC partitions wait; resume with `shardctl shard resume %s`\n",
			id, p.By, p.At.Format(time.RFC3339), p.Reason, id)
		return nil
	case "paused":
		return writeHolds(ctx, env.Stdout, store)
	case "resume":
		p, err := pause.Clear(ctx, store, id)
		if err != nil {
			return err
		}
		if p == nil {
			fmt.Fprintf(env.Stdout, "shard %s is not paused\n", id)
			return nil
		}
		fmt.Fprintf(env.Stdout, "shard %s resumed (paused by %s since %s: %s)\n", id, p.By, p.At.Format(time.RFC3339), p.Reason)
		if *noRerun {
			fmt.Fprintf(env.Stdout, "its skipped windows are not rerun (--no-rerun): shardctl backfill --shard %s --from %s --to <now>\n",
				id, p.At.Truncate(r.Extract.Window.Duration).Format(time.RFC3339))
			return nil
		}
		_, cl, err := af.open(env)
		if err != nil {
			return fmt.Errorf("shard resume: the pause is cleared, but its skipped windows cannot be rerun: %w (rerun with `shardctl shard resume %s` again once Airflow answers, or `shardctl backfill`)", err, id)
		}
		return rerunSkipped(ctx, env, cl, dagen.DAGID(r.Fleet, dagen.Hourly), id, *runs)
	}
	return exitcode.Errorf(exitcode.Usage, "shard: unknown subcommand %q (pause, resume or paused)", sub)
}

// rerunSkipped clears, in the latest runs of dagID, the skipped tasks of shard's group
// (and what runs after them), refusing a clear that would touch another shard's group.
func rerunSkipped(ctx context.Context, env Env, cl *airflow.Client, dagID, shard string, limit int) error {
	runs, err := cl.LatestRuns(ctx, dagID, limit)
	if err != nil {
		return apiErr("shard resume", err)
	}
	cleared := 0
	for _, run := range runs {
		tis, err := cl.TaskInstances(ctx, dagID, run.RunID)
		if err != nil {
			return apiErr("shard resume", err)
		}
		var ids []string
		for _, ti := range tis {
			if ti.State == airflow.StateSkipped && dagen.GroupOf(ti.TaskID) == shard {
				ids = append(ids, ti.TaskID)
			}
		}
		if len(ids) == 0 {
			continue
		}
		sort.Strings(ids)
		req := airflow.Clear{RunID: run.RunID, TaskIDs: ids, IncludeDownstream: true, DryRun: true, Note: "shardctl shard resume " + shard}
		would, err := cl.ClearTaskInstances(ctx, dagID, req)
		if err != nil {
			return apiErr("shard resume", err)
		}
		for _, ti := range would {
			if g := dagen.GroupOf(ti.TaskID); g != "" && g != shard {
				return fmt.Errorf("shard resume: clearing run %s would also clear %s of shard %s; refusing", run.RunID, ti.TaskID, g)
			}
		}
		req.DryRun = false
		done, err := cl.ClearTaskInstances(ctx, dagID, req)
		if err != nil {
			return apiErr("shard resume", err)
		}
		cleared++
		fmt.Fprintf(env.Stdout, "run %s: cleared %d task instance(s) skipped while paused\n", run.RunID, len(done))
	}
	fmt.Fprintf(env.Stdout, "%s: %d run(s) with skipped windows of shard %s run again\n", dagID, cleared, shard)
	return nil
}

// writeHolds prints the paused shards and the quarantined CDC partitions.
func writeHolds(ctx context.Context, w io.Writer, store objstore.Store) error {
	ps, err := pause.List(ctx, store)
	if err != nil {
		return err
	}
	qs, err := cdc.Quarantines(ctx, store)
	if err != nil {
		return err
	}
	if len(ps) == 0 {
		fmt.Fprintln(w, "no shard is paused")
	}
	for _, p := range ps {
		fmt.Fprintf(w, "%-8s PAUSED by %s since %s: %s\n", p.Shard, p.By, p.At.Format(time.RFC3339), p.Reason)
	}
	if len(qs) == 0 {
		fmt.Fprintln(w, "no CDC partition is quarantined")
	}
	for _, q := range qs {
		fmt.Fprintf(w, "%-8s QUARANTINED %s: %s partition %d at offset %d since %s: %s\n", q.Shard, q.Table, q.Topic, q.Partition, q.Offset, q.At.Format(time.RFC3339), q.Reason)
	}
	return nil
}

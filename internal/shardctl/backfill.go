package shardctl

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"time"

	"github.com/shopsphere/shardflow/internal/airflow"
	"github.com/shopsphere/shardflow/internal/command"
	"github.com/shopsphere/shardflow/internal/dagen"
	"github.com/shopsphere/shardflow/internal/exitcode"
	"github.com/shopsphere/shardflow/internal/window"
)

func init() {
	register(Command{
		Name:    "backfill",
		Summary: "trigger the backfill DAG for a shard, table and range of windows",
		Usage:   "--shard ID [--table NAME|all] --from T --to T [--dry-run]" + airflowUsage,
		Help: `Triggers runs of the backfill DAG with conf {shard, table, from, to}. The DAG
re-extracts, reloads and checks every window in [from, to) (aligned to extract.window,
UTC); a range of more than the DAG's per-run limit of (table, window) pairs is split
into consecutive runs. Run ids are deterministic,
shardflow-backfill__<shard>__<table>__<from>__<to> (Airflow refuses manual run ids
starting with backfill__, its own backfills' prefix), so triggering the same range
again reports the existing run instead of starting a second one; re-running a backfill
is idempotent anyway (same keys, file-level loads). --dry-run prints the runs and
needs no Airflow.
Example:
  shardctl backfill --shard s02 --table orders --from 2026-11-20T00:00Z --to 2026-11-21T00:00Z` + airflowHelp,
		Run: runBackfill,
	})
}

func runBackfill(ctx context.Context, env Env, args []string) error {
	c := commands["backfill"]
	fs := newFlags(c, env)
	var af airflowFlags
	af.add(fs)
	shard := fs.String("shard", "", "shard id")
	table := fs.String("table", "all", "table name, or all")
	from := fs.String("from", "", "first window start, RFC 3339 (UTC)")
	to := fs.String("to", "", "end of the range, exclusive, RFC 3339 (UTC)")
	dry := fs.Bool("dry-run", false, "print the runs, trigger nothing (no Airflow needed)")
	if err := command.Parse(fs, args); err != nil {
		return err
	}
	r, e, err := loadEnvironment(env)
	if err != nil {
		return err
	}
	if _, ok := r.Shard(*shard); !ok {
		return exitcode.Errorf(exitcode.Usage, "backfill: --shard %q is not in %s", *shard, env.Registry)
	}
	tables := 1
	if *table == "all" {
		tables = len(r.Tables)
	} else if _, ok := r.Table(*table); !ok {
		return exitcode.Errorf(exitcode.Usage, "backfill: --table %q is not in %s", *table, env.Registry)
	}
	w := r.Extract.Window.Duration
	t0, err := parseInstant("--from", *from, w)
	if err != nil {
		return err
	}
	t1, err := parseInstant("--to", *to, w)
	if err != nil {
		return err
	}
	if !t1.After(t0) {
		return exitcode.Errorf(exitcode.Usage, "backfill: --to %s is not after --from %s", *to, *from)
	}
	var cl *airflow.Client
	if !*dry { // a dry run needs no Airflow: it prints what would be triggered
		if cl, err = af.client(env, e); err != nil {
			return err
		}
	}
	per := time.Duration(dagen.MaxBackfillWindows/tables) * w
	dagID := dagen.DAGID(r.Fleet, dagen.Backfill)
	for start := t0; start.Before(t1); start = start.Add(per) {
		end := start.Add(per)
		if end.After(t1) {
			end = t1
		}
		runID := fmt.Sprintf("shardflow-backfill__%s__%s__%s__%s", *shard, *table, start.Format("20060102T1504Z"), end.Format("20060102T1504Z"))
		conf := map[string]any{"shard": *shard, "table": *table, "from": start.Format(time.RFC3339), "to": end.Format(time.RFC3339)}
		if *dry {
			fmt.Fprintf(env.Stdout, "would trigger %s run %s: %v\n", dagID, runID, conf)
			continue
		}
		run, err := cl.TriggerRun(ctx, dagID, airflow.Trigger{RunID: runID, Conf: conf, Note: "shardctl backfill"})
		var ae *airflow.APIError
		if errors.As(err, &ae) && ae.Status == http.StatusConflict {
			existing, gerr := cl.GetRun(ctx, dagID, runID)
			if gerr != nil {
				return apiErr("backfill", gerr)
			}
			fmt.Fprintf(env.Stdout, "%s run %s exists already: %s\n", dagID, runID, existing.State)
			continue
		}
		if err != nil {
			return apiErr("backfill", err)
		}
		fmt.Fprintf(env.Stdout, "triggered %s run %s (%s): %s .. %s\n", dagID, run.RunID, run.State, conf["from"], conf["to"])
	}
	return nil
}

// parseInstant reads a window bound (window.Parse) and checks it is aligned to size.
func parseInstant(flagName, s string, size time.Duration) (time.Time, error) {
	t, err := window.Parse(s)
	if err != nil {
		return time.Time{}, exitcode.Errorf(exitcode.Usage, "backfill: %s: %v", flagName, err)
	}
	if t.Truncate(size) != t {
		return time.Time{}, exitcode.Errorf(exitcode.Usage, "backfill: %s %s is not aligned to extract.window %s", flagName, s, size)
	}
	return t, nil
}

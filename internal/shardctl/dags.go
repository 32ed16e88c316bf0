package shardctl

import (
	"context"
	"fmt"

	"github.com/shopsphere/shardflow/internal/command"
	"github.com/shopsphere/shardflow/internal/dagen"
	"github.com/shopsphere/shardflow/internal/exitcode"
	"github.com/shopsphere/shardflow/internal/genfile"
)

func init() {
	register(Command{
		Name:    "gen-dags",
		Summary: "render the Airflow DAGs (dags/<environment>/) from shards.yaml",
		Usage:   "[--dir dags] [--check] [--retries N --retry-delay D --max-retry-delay D]",
		Help: `Renders the Airflow DAGs of every environment of shards.yaml into
<dir>/<environment>/: hourly.py (one task group per shard: extract-window -> load -> dq
per table, then dbt build and cross-shard dq), finance_daily.py (waits for every shard
through midnight UTC, builds the finance marts, deadline alert at sla.finance_alert_at),
backfill.py (manual, params shard/table/from/to, one mapped group per window),
cdc_microbatch.py (tokenize cdc --bounded -> load --all -> dbt), the task factory
shardflow_tasks.py of the environment's target (local: subprocesses and a DuckDB writer
pool; k8s: KubernetesPodOperator) and pools.json. An Airflow loads one directory
(dags_folder = dags/<environment>).

With --check nothing is written: it exits 3 and names the stale files when <dir>
differs from what shards.yaml renders (make test runs it). After editing shards.yaml,
run it without --check and commit dags/ with the edit.

The retry flags change the policy of every task (only exit code 75 is retried); the
committed DAGs use the defaults.`,
		Run: runGenDags,
	})
}

func runGenDags(_ context.Context, env Env, args []string) error {
	c := commands["gen-dags"]
	fs := newFlags(c, env)
	def := dagen.DefaultOptions()
	dir := fs.String("dir", "dags", "the DAG directory (one subdirectory per environment)")
	check := fs.Bool("check", false, "only compare; exit 3 if the DAGs under --dir are stale")
	opt := def
	fs.IntVar(&opt.Retries, "retries", def.Retries, "retries of a task that exited 75")
	fs.DurationVar(&opt.RetryDelay, "retry-delay", def.RetryDelay, "delay before the first retry (doubles each time)")
	fs.DurationVar(&opt.MaxRetryDelay, "max-retry-delay", def.MaxRetryDelay, "longest delay between retries")
	if err := command.Parse(fs, args); err != nil {
		return err
	}
	if err := noArgs(fs, "gen-dags"); err != nil {
		return err
	}
	r, err := loadRegistry(env)
	if err != nil {
		return err
	}
	set, err := dagen.Render(r, opt, *dir)
	if err != nil {
		return exitcode.Wrap(exitcode.Usage, fmt.Errorf("gen-dags: %w", err))
	}
	if *check {
		stale, err := set.Diff()
		if err != nil {
			return fmt.Errorf("gen-dags: %w", err)
		}
		if len(stale) > 0 {
			return exitcode.Errorf(exitcode.CheckFail, "gen-dags: %s: %v out of date with %s; run `shardctl gen-dags --dir %s` and commit", *dir, genfile.Paths(stale), env.Registry, *dir)
		}
		fmt.Fprintf(env.Stdout, "%s: DAGs up to date with %s (%d files)\n", *dir, env.Registry, len(set.Files))
		return nil
	}
	changed, err := set.Write()
	if err != nil {
		return fmt.Errorf("gen-dags: %w", err)
	}
	for _, c := range changed {
		fmt.Fprintf(env.Stdout, "  %s/%s\n", *dir, c.Path)
	}
	fmt.Fprintf(env.Stdout, "%s: %d file(s) changed, %d unchanged\n", *dir, len(changed), len(set.Files)-len(changed))
	return nil
}

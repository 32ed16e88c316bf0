package shardctl

import (
	"context"
	"fmt"

	"github.com/shopsphere/shardflow/internal/command"
	"github.com/shopsphere/shardflow/internal/exitcode"
	"github.com/shopsphere/shardflow/internal/genfile"
	"github.com/shopsphere/shardflow/internal/seed"
)

func init() {
	register(Command{
		Name:    "gen-seeds",
		Summary: "render the dbt seeds (shard_ownership, shards) from shards.yaml",
		Usage:   "[--dir dbt/seeds] [--check]",
		Help: `Renders the dbt seeds that carry the registry into the warehouse:
shard_ownership.csv (the whole ownership history: shard, bucket range, epoch,
valid_from, valid_to; the dbt ownership filter joins on it) and shards.csv.

With --check nothing is written: it exits 3 and names the stale files when the seeds
under --dir differ from what shards.yaml renders (CI runs the same check as a Go test).
After editing shards.yaml, run it without --check and commit dbt/seeds with the edit.

For a local registry of another size, write the seeds elsewhere and point dbt at them:
  shardctl gen-seeds --dir var/dbt-seeds && SHARDFLOW_DBT_SEEDS=../var/dbt-seeds dbt seed`,
		Run: runGenSeeds,
	})
}

func runGenSeeds(_ context.Context, env Env, args []string) error {
	c := commands["gen-seeds"]
	fs := newFlags(c, env)
	dir := fs.String("dir", "dbt/seeds", "seed directory of the dbt project")
	check := fs.Bool("check", false, "only compare; exit 3 if the committed seeds are stale")
	if err := command.Parse(fs, args); err != nil {
		return err
	}
	if err := noArgs(fs, "gen-seeds"); err != nil {
		return err
	}
	r, err := loadRegistry(env)
	if err != nil {
		return err
	}
	set, err := seed.Render(r, *dir)
	if err != nil {
		return fmt.Errorf("gen-seeds: %w", err)
	}
	if *check {
		stale, err := set.Diff()
		if err != nil {
			return fmt.Errorf("gen-seeds: %w", err)
		}
		if len(stale) > 0 {
			return exitcode.Errorf(exitcode.CheckFail, "gen-seeds: %s: %v out of date with %s; run `shardctl gen-seeds --dir %s` and commit", *dir, genfile.Paths(stale), env.Registry, *dir)
		}
		fmt.Fprintf(env.Stdout, "%s: seeds up to date with %s (epoch %d)\n", *dir, env.Registry, r.CurrentEpoch())
		return nil
	}
	changed, err := set.Write()
	if err != nil {
		return fmt.Errorf("gen-seeds: %w", err)
	}
	fmt.Fprintf(env.Stdout, "%s: %d seed(s) written, %d unchanged (epoch %d)\n", *dir, len(changed), len(set.Files)-len(changed), r.CurrentEpoch())
	return nil
}

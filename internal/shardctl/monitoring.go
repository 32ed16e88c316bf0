package shardctl

import (
	"context"
	"fmt"
	"path/filepath"

	"github.com/shopsphere/shardflow/internal/alertrule"
	"github.com/shopsphere/shardflow/internal/command"
	"github.com/shopsphere/shardflow/internal/dashboard"
	"github.com/shopsphere/shardflow/internal/exitcode"
	"github.com/shopsphere/shardflow/internal/genfile"
)

func init() {
	register(Command{
		Name:    "gen-monitoring",
		Summary: "render the Prometheus alert rules and the Grafana dashboard (monitoring/) from shards.yaml",
		Usage:   "[--dir monitoring] [--check]",
		Help: `Renders, from shards.yaml's sla and monitoring sections and its shards:

  <dir>/prometheus/shardflow.rules.yml     the alerting rules (docs/runbooks/alerts.md
                                           has a section per alert; promtool tests them
                                           in <dir>/prometheus/shardflow.rules.test.yml)
  <dir>/grafana/shardflow.dashboard.json   the dashboard: fleet-wide panels, then one
                                           row per shard

With --check nothing is written: it exits 3 and names the stale files when the files
under --dir differ from what shards.yaml renders (make lint runs it). After editing
shards.yaml, run it without --check and commit monitoring/ with the edit.`,
		Run: runGenMonitoring,
	})
}

func runGenMonitoring(_ context.Context, env Env, args []string) error {
	c := commands["gen-monitoring"]
	fs := newFlags(c, env)
	dir := fs.String("dir", "monitoring", "output directory")
	check := fs.Bool("check", false, "only compare; exit 3 if the committed files are stale")
	if err := command.Parse(fs, args); err != nil {
		return err
	}
	if err := noArgs(fs, "gen-monitoring"); err != nil {
		return err
	}
	r, err := loadRegistry(env)
	if err != nil {
		return err
	}
	rules, err := alertrule.Render(r, filepath.Join(*dir, "prometheus"))
	if err != nil {
		return fmt.Errorf("gen-monitoring: %w", err)
	}
	dash, err := dashboard.Render(r, filepath.Join(*dir, "grafana"))
	if err != nil {
		return fmt.Errorf("gen-monitoring: %w", err)
	}
	var stale []string
	for _, set := range []genfile.Set{rules, dash} {
		if *check {
			ch, err := set.Diff()
			if err != nil {
				return fmt.Errorf("gen-monitoring: %w", err)
			}
			for _, p := range genfile.Paths(ch) {
				stale = append(stale, filepath.Join(set.Dir, p))
			}
			continue
		}
		changed, err := set.Write()
		if err != nil {
			return fmt.Errorf("gen-monitoring: %w", err)
		}
		fmt.Fprintf(env.Stdout, "%s: %d file(s) written, %d unchanged\n", set.Dir, len(changed), len(set.Files)-len(changed))
	}
	if len(stale) > 0 {
		return exitcode.Errorf(exitcode.CheckFail, "gen-monitoring: %v out of date with %s; run `shardctl gen-monitoring --dir %s` and commit", stale, env.Registry, *dir)
	}
	if *check {
		fmt.Fprintf(env.Stdout, "%s: rules and dashboard up to date with %s\n", *dir, env.Registry)
	}
	return nil
}

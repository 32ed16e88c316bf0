package shardctl

import (
	"context"
	"fmt"

	"github.com/shopsphere/shardflow/internal/command"
	"github.com/shopsphere/shardflow/internal/dagen"
)

func init() {
	for _, p := range []struct {
		name, summary string
		paused        bool
	}{
		{"pause", "pause the fleet's DAGs (or one) in Airflow: no new runs start", true},
		{"unpause", "unpause the fleet's DAGs (or one) in Airflow", false},
	} {
		paused := p.paused
		register(Command{
			Name:    p.name,
			Summary: p.summary,
			Usage:   "[--dag all|hourly|finance_daily|backfill|cdc_microbatch]" + airflowUsage,
			Help: `Pauses or unpauses DAGs of the fleet through the Airflow REST API. A paused
DAG starts no new runs; running tasks finish. Prints each DAG's new state.` + airflowHelp,
			Run: func(ctx context.Context, env Env, args []string) error { return runPause(ctx, env, args, paused) },
		})
	}
}

func runPause(ctx context.Context, env Env, args []string, paused bool) error {
	name := "unpause"
	if paused {
		name = "pause"
	}
	fs := newFlags(commands[name], env)
	var af airflowFlags
	af.add(fs)
	kind := fs.String("dag", "all", "which DAG, or all")
	if err := command.Parse(fs, args); err != nil {
		return err
	}
	kinds := dagen.Kinds
	if *kind != "all" {
		if err := dagKind(*kind); err != nil {
			return err
		}
		kinds = []string{*kind}
	}
	r, cl, err := af.open(env)
	if err != nil {
		return err
	}
	for _, k := range kinds {
		d, err := cl.SetPaused(ctx, dagen.DAGID(r.Fleet, k), paused)
		if err != nil {
			return apiErr(name, err)
		}
		state := "unpaused"
		if d.IsPaused {
			state = "paused"
		}
		fmt.Fprintf(env.Stdout, "%s: %s\n", d.DAGID, state)
	}
	return nil
}

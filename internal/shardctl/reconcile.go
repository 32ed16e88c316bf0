package shardctl

import (
	"context"
	"fmt"
	"text/tabwriter"

	"github.com/shopsphere/shardflow/internal/command"
	"github.com/shopsphere/shardflow/internal/exitcode"
	"github.com/shopsphere/shardflow/internal/reconcile"
	"github.com/shopsphere/shardflow/internal/registry"
	whbackend "github.com/shopsphere/shardflow/internal/warehouse/backend"
)

func init() {
	register(Command{
		Name:    "reconcile",
		Summary: "compare the warehouse with the shards, bucket by bucket (count and checksum)",
		Usage:   "",
		Help: `For every bucket, compares the live rows (not deleted) of each table on the shard that
owns the bucket now with the warehouse's latest owned version of each key
(intermediate.int_<table>_deduplicated, not removed), and fact_orders with the shards'
orders: the count and the checksum of (key, row_version) (docs/contracts.md §5).
Prints the rows per current owner and every bucket that differs; exit 3 when one does.

It reads every row of every shard (extract DSNs) and of the warehouse: run it after
a move, or off peak; the scheduled checks are dq's.`,
		Run: runReconcile,
	})
}

func runReconcile(ctx context.Context, env Env, args []string) error {
	c := commands["reconcile"]
	fs := newFlags(c, env)
	if err := command.Parse(fs, args); err != nil {
		return err
	}
	if err := noArgs(fs, "reconcile"); err != nil {
		return err
	}
	reg, e, err := loadEnvironment(env)
	if err != nil {
		return err
	}
	shards, err := reconcile.Shards(ctx, reg, func(id string) string {
		s, _ := reg.Shard(id)
		return env.Vars[s.Connection.Extract.Env]
	})
	if err != nil {
		return exitcode.Wrap(exitcode.Retryable, err)
	}
	wh, err := whbackend.Open(ctx, e.Warehouse, env.Vars)
	if err != nil {
		return err
	}
	defer wh.Close()
	ware, err := reconcile.Warehouse(ctx, wh.DB(), reg, wh.Qualify)
	if err != nil {
		return exitcode.Wrap(exitcode.Retryable, err)
	}
	tables := []string{}
	for _, t := range reg.Tables {
		tables = append(tables, t.Name)
	}
	tables = append(tables, reconcile.FactOrders)
	a, b := reconcile.Owners(reg, shards), reconcile.Owners(reg, ware)
	tw := tabwriter.NewWriter(env.Stdout, 0, 0, 2, ' ', 0)
	fmt.Fprint(tw, "shard\tbuckets")
	for _, t := range tables {
		fmt.Fprintf(tw, "\t%s shard/warehouse", t)
	}
	fmt.Fprintln(tw)
	for _, s := range reg.Shards {
		if len(s.Buckets) == 0 {
			continue
		}
		fmt.Fprintf(tw, "%s\t%s", s.ID, registry.FormatRanges(s.Buckets))
		for _, t := range tables {
			fmt.Fprintf(tw, "\t%d/%d", a[s.ID][t], b[s.ID][t])
		}
		fmt.Fprintln(tw)
	}
	tw.Flush()
	diffs := reconcile.Compare(shards, ware)
	if len(diffs) == 0 {
		fmt.Fprintf(env.Stdout, "reconcile: all %d buckets equal in %d tables (count and checksum)\n", reg.Routing.Buckets, len(tables))
		return nil
	}
	for i, d := range diffs {
		if i == 10 {
			fmt.Fprintf(env.Stdout, "  ... %d more\n", len(diffs)-10)
			break
		}
		fmt.Fprintf(env.Stdout, "  %s bucket %d: shards %s, warehouse %s (rows checksum)\n", d.Table, d.Bucket, d.Shards, d.Ware)
	}
	return exitcode.Errorf(exitcode.CheckFail, "reconcile: %d (table, bucket) pairs differ", len(diffs))
}

// Command batch is the batch-path benchmark (`make bench` → bench-batch). On one local
// shard and one window it measures
//
//   - the reference read: COPY (SELECT <landed columns> FROM orders WHERE updated_at in
//     the window ORDER BY updated_at, order_id) TO STDOUT (FORMAT binary), rows/s;
//   - extract-window's rate for the same window: keyset pages, ownership filter,
//     tokenization, Parquet into the directory store, manifest; rows/s;
//
// first with the table at 1x (the window's rows plus as many outside it), then at 10x
// (nine times more rows outside the window), and prints both side by side. The window's
// cost should follow the window, not the table (invariant 1).
package main

import (
	"context"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/signal"
	"path/filepath"
	"syscall"
	"text/tabwriter"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/shopsphere/shardflow/internal/extract"
	"github.com/shopsphere/shardflow/internal/extract/extracttest"
	"github.com/shopsphere/shardflow/internal/fleet"
	"github.com/shopsphere/shardflow/internal/registry"
	"github.com/shopsphere/shardflow/internal/window"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if err := run(ctx, os.Args[1:], os.Stdout); err != nil {
		fmt.Fprintln(os.Stderr, "bench-batch:", err)
		os.Exit(1)
	}
}

func run(ctx context.Context, args []string, stdout io.Writer) error {
	fs := flag.NewFlagSet("bench-batch", flag.ContinueOnError)
	regPath := fs.String("registry", "shards.yaml", "shards.yaml")
	dir := fs.String("dir", "var/bench/batch", "working directory (fleet, lake); removed first")
	windowRows := fs.Int("window-rows", 200_000, "rows inside the measured window")
	growth := fs.Int("growth", 10, "the second table size, as a multiple of the first")
	runs := fs.Int("runs", 3, "measurements per figure (the best is reported)")
	if err := fs.Parse(args); err != nil {
		return err
	}
	reg, err := registry.Load(*regPath)
	if err != nil {
		return err
	}
	abs, err := filepath.Abs(*dir)
	if err != nil {
		return err
	}
	_ = os.RemoveAll(abs)
	if err := os.MkdirAll(abs, 0o755); err != nil {
		return err
	}
	// one shard is enough: bring up the first shard of the registry only
	one := *reg
	one.Shards = reg.Shards[:1]
	shard := one.Shards[0].ID
	f, err := fleet.Up(ctx, fleet.Config{Dir: filepath.Join(abs, "fleet"), Registry: &one, Fast: true,
		Ports: map[string]int{shard: fleet.DefaultBasePort + 90}})
	if err != nil {
		return fmt.Errorf("fleet up: %w", err)
	}
	defer func() { _ = f.Stop(context.WithoutCancel(ctx)) }()
	sh, _ := f.Shard(shard)
	admin, err := pgx.Connect(ctx, sh.AdminDSN)
	if err != nil {
		return err
	}
	defer admin.Close(context.WithoutCancel(ctx))
	conn, err := pgx.Connect(ctx, sh.ExtractDSN)
	if err != nil {
		return err
	}
	defer conn.Close(context.WithoutCancel(ctx))

	t, _ := reg.Table("orders")
	size := reg.Extract.Window.Duration
	w := window.Window{Start: time.Date(2026, 3, 10, 12, 0, 0, 0, time.UTC)}
	w.End = w.Start.Add(size)
	custs := extracttest.CustomersOwnedBy(reg, shard, w.Start, 2000, 1)
	fill := func(rows int, from, to time.Time, seed string) error {
		st := time.Now()
		err := extracttest.Fill(ctx, admin, reg, extracttest.Spec{Table: "orders", Rows: rows, From: from, To: to, Customers: custs, Seed: seed})
		fmt.Fprintf(os.Stderr, "filled %d rows in %s\n", rows, time.Since(st).Round(time.Millisecond))
		return err
	}
	// 1x: the window's rows, and as many before it
	if err := fill(*windowRows, w.Start, w.End, "in"); err != nil {
		return err
	}
	if err := fill(*windowRows, w.Start.Add(-30*24*time.Hour), w.Start, "out0"); err != nil {
		return err
	}
	lake := filepath.Join(abs, "lake")
	var results []result
	measure := func(label string) error {
		var total int64
		if err := admin.QueryRow(ctx, "SELECT count(*) FROM orders").Scan(&total); err != nil {
			return err
		}
		best := func(f func() (int64, time.Duration, error)) (int64, time.Duration, error) {
			var bn int64
			var bd time.Duration
			for i := 0; i < *runs; i++ {
				n, d, err := f()
				if err != nil {
					return 0, 0, err
				}
				if bd == 0 || d < bd {
					bn, bd = n, d
				}
			}
			return bn, bd, nil
		}
		n, d, err := best(func() (int64, time.Duration, error) { return copyWindow(ctx, conn, t, w) })
		if err != nil {
			return err
		}
		results = append(results, result{size: label, tableRow: total, what: "COPY (SELECT ...) TO STDOUT binary", rows: n, took: d})
		n, d, err = best(func() (int64, time.Duration, error) { return extractWindow(ctx, reg, conn, lake, shard, w) })
		if err != nil {
			return err
		}
		results = append(results, result{size: label, tableRow: total, what: "extract-window (tokenize + Parquet + dir store)", rows: n, took: d})
		return nil
	}
	if err := measure("1x"); err != nil {
		return err
	}
	// grow the table with rows outside the window, before and after it
	extra := (*growth - 1) * (*windowRows * 2)
	if err := fill(extra/2, w.Start.Add(-400*24*time.Hour), w.Start.Add(-30*24*time.Hour), "out1"); err != nil {
		return err
	}
	if err := fill(extra-extra/2, w.End, w.End.Add(200*24*time.Hour), "out2"); err != nil {
		return err
	}
	if err := measure(fmt.Sprintf("%dx", *growth)); err != nil {
		return err
	}

	fmt.Fprintf(stdout, "\nbatch extract, one shard, window %s (%d rows), best of %d\n", w, *windowRows, *runs)
	tw := tabwriter.NewWriter(stdout, 0, 0, 2, ' ', tabwriter.AlignRight)
	fmt.Fprintln(tw, "table\ttable rows\tpath\twindow rows\tseconds\trows/s\t")
	for _, r := range results {
		fmt.Fprintf(tw, "%s\t%d\t%s\t%d\t%.3f\t%.0f\t\n", r.size, r.tableRow, r.what, r.rows, r.took.Seconds(), r.rate())
	}
	_ = tw.Flush()
	ex1, ex10 := results[1], results[3]
	cp1 := results[0]
	fmt.Fprintf(stdout, "extract / COPY at 1x: %.2f; extract time %s at 1x vs %s at %dx (ratio %.2f)\n",
		ex1.rate()/cp1.rate(), ex1.took.Round(time.Millisecond), ex10.took.Round(time.Millisecond), *growth, ex10.took.Seconds()/ex1.took.Seconds())
	return nil
}

// extractWindow lands the window with the real extract path and returns rows and time.
func extractWindow(ctx context.Context, reg *registry.Registry, conn *pgx.Conn, lake, shard string, w window.Window) (int64, time.Duration, error) {
	deps, err := newDeps(reg, lake)
	if err != nil {
		return 0, 0, err
	}
	ex := &extract.Extractor{Registry: reg, Conn: conn, Store: deps.store, Tokenizer: deps.tokenizer, NewWriter: deps.newWriter,
		CodeVersion: "bench", Logger: slog.New(slog.NewTextHandler(io.Discard, nil))}
	st := time.Now()
	res, err := ex.Run(ctx, extract.Job{Shard: shard, Table: "orders", Window: w})
	if err != nil {
		return 0, 0, err
	}
	return res.Manifest.Rows, time.Since(st), nil
}

// Command batch is the batch-path benchmark (`make bench` → bench-batch). On one local
// shard and one window it measures
//
//   - the reference read: COPY (SELECT <landed columns> FROM orders WHERE updated_at in
//     the window ORDER BY updated_at, order_id) TO STDOUT (FORMAT binary), rows/s;
//   - extract-window's rate for the same window: keyset pages, ownership filter,
//     tokenization, Parquet into the directory store, manifest; rows/s;
//
// first with the table at 1x (the window's rows plus as many outside it), then at 10x
// (nine times more rows outside the window), and prints both side by side with the
// ratio extract ÷ COPY at each size and extract's 10x time ÷ its 1x time. The window's
// cost should follow the window, not the table (invariant 1). It records both rates,
// each with its COPY reference, in the rates file (-rates) that `shardctl capacity`
// reads.
package main

import (
	"context"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"math"
	"os"
	"os/signal"
	"path/filepath"
	"runtime/pprof"
	"strings"
	"syscall"
	"text/tabwriter"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/shopsphere/shardflow/internal/capacity"
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
	cpuProfile := fs.String("cpuprofile", "", "write a CPU profile of the 1x measurement (extract-window runs; COPY's client side is idle) to this file")
	ratesPath := fs.String("rates", capacity.DefaultRatesFile, "record extract_rows_per_s and extract_rows_per_s_10x in this rates file (\"\" = don't)")
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
	// settle the table before measuring (visibility map, hint bits, statistics), so that
	// no autovacuum of the fill runs under either read
	settle := func() error {
		_, err := admin.Exec(ctx, "VACUUM (ANALYZE) orders")
		return err
	}
	// measure reads the window runs times each way, COPY and extract alternating so
	// that both see the same load from the rest of the machine, and keeps each's best.
	measure := func(label string) (pair, error) {
		pr := pair{size: label}
		if err := settle(); err != nil {
			return pr, err
		}
		if err := admin.QueryRow(ctx, "SELECT count(*) FROM orders").Scan(&pr.tableRows); err != nil {
			return pr, err
		}
		stopProfile, err := startProfile(*cpuProfile, label == "1x")
		if err != nil {
			return pr, err
		}
		defer func() { _ = stopProfile() }()
		for i := 0; i < *runs; i++ {
			n, d, err := extracttest.CopyWindow(ctx, conn, t, w)
			if err != nil {
				return pr, err
			}
			pr.copy.keep(n, d)
			if n, d, err = extractWindow(ctx, reg, conn, lake, shard, w); err != nil {
				return pr, err
			}
			pr.extract.keep(n, d)
		}
		return pr, stopProfile()
	}
	load1 := loadAverage()
	one1, err := measure("1x")
	if err != nil {
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
	grown, err := measure(fmt.Sprintf("%dx", *growth))
	if err != nil {
		return err
	}
	load2 := loadAverage()

	fmt.Fprintf(stdout, "\nbatch extract, one shard, window %s (%d rows), best of %d, COPY and extract alternating; load average %s before, %s after\n",
		w, *windowRows, *runs, load1, load2)
	tw := tabwriter.NewWriter(stdout, 0, 0, 2, ' ', tabwriter.AlignRight)
	fmt.Fprintln(tw, "table\ttable rows\tpath\twindow rows\tseconds\trows/s\textract ÷ COPY\t")
	for _, pr := range []pair{one1, grown} {
		fmt.Fprintf(tw, "%s\t%d\t%s\t%d\t%.3f\t%.0f\t\t\n", pr.size, pr.tableRows, "COPY (SELECT ...) TO STDOUT binary", pr.copy.rows, pr.copy.took.Seconds(), pr.copy.rate())
		fmt.Fprintf(tw, "%s\t%d\t%s\t%d\t%.3f\t%.0f\t%.2f\t\n", pr.size, pr.tableRows, "extract-window (tokenize + Parquet + dir store)", pr.extract.rows, pr.extract.took.Seconds(), pr.extract.rate(), pr.ratio())
	}
	_ = tw.Flush()
	flat := grown.extract.took.Seconds() / one1.extract.took.Seconds()
	fmt.Fprintf(stdout, "extract ÷ COPY: %.2f at 1x, %.2f at %s (goal >= 0.6); extract time %s at %s ÷ %s at 1x: %.2f (goal <= 1.2)\n",
		one1.ratio(), grown.ratio(), grown.size, grown.extract.took.Round(time.Millisecond), grown.size, one1.extract.took.Round(time.Millisecond), flat)

	if *ratesPath == "" {
		return nil
	}
	note := func(pr pair) string {
		return fmt.Sprintf("extract-window (tokenize + Parquet + dir store), %d-row window of a %d-row table (%s), best of %d alternating with the reference COPY (SELECT ...) TO STDOUT binary; extract ÷ COPY %.2f; load average %s; docs/extract.md Performance",
			*windowRows, pr.tableRows, pr.size, *runs, pr.ratio(), load2)
	}
	const bench = "make bench-batch"
	if err := capacity.UpdateRates(*ratesPath, capacity.Rates{
		"extract_rows_per_s":     {Value: math.Round(one1.extract.rate()), Unit: "rows/s", Reference: math.Round(one1.copy.rate()), Bench: bench, Note: note(one1)},
		"extract_rows_per_s_10x": {Value: math.Round(grown.extract.rate()), Unit: "rows/s", Reference: math.Round(grown.copy.rate()), Bench: bench, Note: note(grown)},
	}); err != nil {
		return fmt.Errorf("rates: %w", err)
	}
	fmt.Fprintf(stdout, "rates: extract_rows_per_s, extract_rows_per_s_10x written to %s\n", *ratesPath)
	return nil
}

// loadAverage is the machine's 1-, 5- and 15-minute load average (/proc/loadavg), or
// "unknown": the figures are only comparable with a reference taken in the same run.
func loadAverage() string {
	b, err := os.ReadFile("/proc/loadavg")
	if f := strings.Fields(string(b)); err == nil && len(f) >= 3 {
		return strings.Join(f[:3], " ")
	}
	return "unknown"
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

// startProfile starts a CPU profile into path when path is set and on is true, and
// returns the function that stops it and closes the file (once; later calls do nothing).
func startProfile(path string, on bool) (stop func() error, err error) {
	if path == "" || !on {
		return func() error { return nil }, nil
	}
	f, err := os.Create(path)
	if err != nil {
		return nil, err
	}
	if err := pprof.StartCPUProfile(f); err != nil {
		_ = f.Close()
		return nil, err
	}
	return func() error {
		if f == nil {
			return nil
		}
		pprof.StopCPUProfile()
		err := f.Close()
		f = nil
		return err
	}, nil
}

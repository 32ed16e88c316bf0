package main

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"text/tabwriter"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/shopsphere/shardflow/internal/capacity"
	"github.com/shopsphere/shardflow/internal/extract"
	"github.com/shopsphere/shardflow/internal/extract/extracttest"
	"github.com/shopsphere/shardflow/internal/fleet"
	"github.com/shopsphere/shardflow/internal/landing"
	"github.com/shopsphere/shardflow/internal/objstore/dir"
	"github.com/shopsphere/shardflow/internal/registry"
	"github.com/shopsphere/shardflow/internal/tokenize"
	"github.com/shopsphere/shardflow/internal/window"
)

// parallelShard is one shard of the parallel part: its extract connection and the
// backend serving it (whose CPU time is the shard's cost).
type parallelShard struct {
	id   string
	conn *pgx.Conn
	pid  uint32
}

// parallelRow is one line of the parallel table: one path on k shards at once.
type parallelRow struct {
	k              int
	path           string
	rows           int64         // over all k shards
	wall           time.Duration // first start to last end
	perShard       float64       // mean of each shard's rows / its own time
	client, server time.Duration // CPU: this process; the k backends
}

func (r parallelRow) aggregate() float64 { return float64(r.rows) / r.wall.Seconds() }

// perMillion is CPU seconds per million rows.
func (r parallelRow) perMillion(d time.Duration) float64 {
	return d.Seconds() / (float64(r.rows) / 1e6)
}

// runParallel brings up max(k) shards, fills the same window on each with the same
// number of rows (and as many before it, so the index is not the whole table), then
// for every k reads the window on the first k shards at once: COPY ... TO STDOUT, the
// reference, then extract-window's path (keyset pages, ownership filter, tokenization,
// Parquet into the directory store, manifest), each from its own goroutine and
// connection, as k extract-window tasks of the hourly DAG would.
func runParallel(ctx context.Context, c config, stdout io.Writer) (capacity.Rates, error) {
	maxK := slices.Max(c.parallelShards)
	base, err := os.ReadFile(c.registry)
	if err != nil {
		return nil, err
	}
	text, err := registry.Generate(base, maxK, 0)
	if err != nil {
		return nil, err
	}
	reg, err := registry.Check(bytes.NewReader(text))
	if err != nil {
		return nil, err
	}
	work := filepath.Join(c.dir, "parallel")
	_ = os.RemoveAll(work)
	if err := os.MkdirAll(work, 0o755); err != nil {
		return nil, err
	}
	st := time.Now()
	f, err := fleet.Up(ctx, fleet.Config{Dir: filepath.Join(work, "fleet"), Registry: reg, Fast: true, BasePort: c.basePort})
	if f != nil {
		defer func() { _ = f.Stop(context.WithoutCancel(ctx)) }()
	}
	if err != nil {
		return nil, err
	}
	fmt.Fprintf(os.Stderr, "parallel: %d shards up in %s\n", maxK, time.Since(st).Round(time.Millisecond))

	t, ok := reg.Table("orders")
	if !ok {
		return nil, fmt.Errorf("%s has no orders table", c.registry)
	}
	w := window.Window{Start: time.Date(2026, 3, 10, 12, 0, 0, 0, time.UTC)}
	w.End = w.Start.Add(reg.Extract.Window.Duration)
	shards := make([]parallelShard, 0, maxK)
	for _, s := range f.Shards {
		if err := fillShard(ctx, reg, s, w, c.windowRows); err != nil {
			return nil, err
		}
		conn, err := pgx.Connect(ctx, s.ExtractDSN)
		if err != nil {
			return nil, fmt.Errorf("shard %s: %w", s.ID, err)
		}
		defer conn.Close(context.WithoutCancel(ctx))
		shards = append(shards, parallelShard{id: s.ID, conn: conn, pid: conn.PgConn().PID()})
	}

	lake := filepath.Join(work, "lake")
	var rows []parallelRow
	for _, k := range c.parallelShards {
		on := shards[:k]
		cp, err := best(c.runs, func() (parallelRow, error) {
			return concurrently(on, "COPY (SELECT ...) TO STDOUT binary", func(s parallelShard) (int64, time.Duration, error) {
				return extracttest.CopyWindow(ctx, s.conn, t, w)
			})
		})
		if err != nil {
			return nil, err
		}
		ex, err := best(c.runs, func() (parallelRow, error) {
			return concurrently(on, "extract-window", func(s parallelShard) (int64, time.Duration, error) {
				return extractOne(ctx, reg, s, lake, w)
			})
		})
		if err != nil {
			return nil, err
		}
		cp.k, ex.k = k, k
		rows = append(rows, cp, ex)
	}

	header(stdout, fmt.Sprintf("parallel extraction: the same %s window (%d orders rows per shard) on k shards at once, each its own PostgreSQL cluster, best of %d",
		short(reg.Extract.Window.Duration), c.windowRows, c.runs))
	tw := tabwriter.NewWriter(stdout, 0, 0, 2, ' ', tabwriter.AlignRight)
	fmt.Fprintln(tw, "shards\tpath\trows\tseconds\taggregate rows/s\tper-shard rows/s\tvs 1 shard\tclient CPU s/Mrow\tshard CPU s/Mrow\textract/COPY\t")
	rates := capacity.Rates{}
	for i, r := range rows {
		first := rows[i%2] // the same path at the first k
		ratio := ""
		if i%2 == 1 {
			ratio = fmt.Sprintf("%.2f", r.aggregate()/rows[i-1].aggregate())
			rates[fmt.Sprintf("extract_parallel_rows_per_s_%d", r.k)] = capacity.Rate{
				Value: round(r.aggregate()), Unit: "rows/s", Reference: round(rows[i-1].aggregate()),
				Note: fmt.Sprintf("aggregate of extract-window on %d shard(s) at once, one window of %d rows each, client and shards sharing %s; reference COPY TO STDOUT of the same windows at once; machine shared, load average %s",
					r.k, c.windowRows, capacity.MachineCores(), loadAverage()),
			}
		}
		fmt.Fprintf(tw, "%d\t%s\t%d\t%.3f\t%.0f\t%.0f\t%.2fx\t%.2f\t%.2f\t%s\t\n", r.k, r.path, r.rows, r.wall.Seconds(), r.aggregate(), r.perShard,
			r.aggregate()/first.aggregate(), r.perMillion(r.client), r.perMillion(r.server), ratio)
	}
	if err := tw.Flush(); err != nil {
		return nil, err
	}
	fmt.Fprintln(stdout, "client CPU: this process (extract, tokenize, Parquet; ~0 for COPY into a discard); shard CPU: the k PostgreSQL backends serving the reads")
	return rates, nil
}

// fillShard puts rows orders rows into w on shard s, of customers s owns, and as many
// in the 30 days before it.
func fillShard(ctx context.Context, reg *registry.Registry, s fleet.Shard, w window.Window, rows int) error {
	admin, err := pgx.Connect(ctx, s.AdminDSN)
	if err != nil {
		return fmt.Errorf("shard %s: %w", s.ID, err)
	}
	defer admin.Close(context.WithoutCancel(ctx))
	custs := extracttest.CustomersOwnedBy(reg, s.ID, w.Start, 2000, 1)
	st := time.Now()
	for _, sp := range []extracttest.Spec{
		{Table: "orders", Rows: rows, From: w.Start, To: w.End, Customers: custs, Seed: s.ID + "in"},
		{Table: "orders", Rows: rows, From: w.Start.Add(-30 * 24 * time.Hour), To: w.Start, Customers: custs, Seed: s.ID + "out"},
	} {
		if err := extracttest.Fill(ctx, admin, reg, sp); err != nil {
			return fmt.Errorf("shard %s: %w", s.ID, err)
		}
	}
	fmt.Fprintf(os.Stderr, "parallel: shard %s filled with %d rows in %s\n", s.ID, 2*rows, time.Since(st).Round(time.Millisecond))
	return nil
}

// extractOne lands the window of shard s with the real extract path.
func extractOne(ctx context.Context, reg *registry.Registry, s parallelShard, lake string, w window.Window) (int64, time.Duration, error) {
	tok, err := tokenize.New(reg.Tokenizer.KeyID, []byte("bench-key-bench-key-bench-key-bench-key"))
	if err != nil {
		return 0, 0, err
	}
	ex := &extract.Extractor{Registry: reg, Conn: s.conn, Store: dir.Store{Root: lake}, Tokenizer: tok, NewWriter: landing.OpenParquet,
		CodeVersion: "bench", Logger: slog.New(slog.NewTextHandler(io.Discard, nil))}
	st := time.Now()
	res, err := ex.Run(ctx, extract.Job{Shard: s.id, Table: "orders", Window: w})
	if err != nil {
		return 0, 0, fmt.Errorf("extract shard %s: %w", s.id, err)
	}
	return res.Manifest.Rows, time.Since(st), nil
}

// concurrently runs read on every shard at once, each in its own goroutine, released
// together, and measures the whole: wall time, rows, CPU of this process and of the
// shards' backends.
func concurrently(on []parallelShard, path string, read func(parallelShard) (int64, time.Duration, error)) (parallelRow, error) {
	pids := make([]uint32, len(on))
	for i, s := range on {
		pids[i] = s.pid
	}
	m := newCPUMeter(pids)
	if err := m.start(); err != nil {
		return parallelRow{}, err
	}
	n := make([]int64, len(on))
	d := make([]time.Duration, len(on))
	errs := make([]error, len(on))
	var wg sync.WaitGroup
	gate := make(chan struct{})
	for i, s := range on {
		wg.Add(1)
		go func() {
			defer wg.Done()
			<-gate
			n[i], d[i], errs[i] = read(s)
		}()
	}
	st := time.Now()
	close(gate)
	wg.Wait()
	r := parallelRow{path: path, wall: time.Since(st)}
	var err error
	if r.client, r.server, err = m.stop(); err != nil {
		return parallelRow{}, err
	}
	for i := range on {
		if errs[i] != nil {
			return parallelRow{}, errs[i]
		}
		r.rows += n[i]
		r.perShard += float64(n[i]) / d[i].Seconds() / float64(len(on))
	}
	return r, nil
}

// best runs f n times and keeps the run with the shortest wall time.
func best(n int, f func() (parallelRow, error)) (parallelRow, error) {
	var b parallelRow
	for i := 0; i < n; i++ {
		r, err := f()
		if err != nil {
			return parallelRow{}, err
		}
		if i == 0 || r.wall < b.wall {
			b = r
		}
	}
	return b, nil
}

// short prints a duration without its zero minutes and seconds: 1h, 30m.
func short(d time.Duration) string {
	return strings.TrimSuffix(strings.TrimSuffix(d.String(), "0s"), "0m")
}

// round rounds a rate to whole units.
func round(x float64) float64 { return float64(int64(x + 0.5)) }

// Command shardcost is the benchmark of the shard's own cost of being extracted
// (`make bench-shard-cost`). On one local shard holding a table of realistic size, the
// OLTP traffic generator (internal/workload, the one the e2e tests use) writes at a
// fixed rate while each transaction's latency (BEGIN to COMMIT acknowledged) is
// recorded, in five phases of equal length:
//
//   - idle: the traffic alone;
//   - extract: extract-window lands a large closed window of the same shard, back to
//     back, for the whole phase;
//   - extract read only: the same window's read as one COPY ... TO STDOUT, back to
//     back: the shard's side of the extract without the extractor's own CPU (which
//     shares these 2 cores with the shard here, and runs in a pod elsewhere in production);
//   - cdc: a CDC catch-up: pg_recvlogical (pgoutput, the plugin Debezium uses) drains a
//     logical slot with a backlog, a stand-in for Debezium's read cost on the shard
//     (Kafka and Debezium are not started: their cost is on other hosts);
//   - idle again, to show how much the machine's other load moved the baseline.
//
// It prints write latency p50/p99/max per phase with the deltas against idle (both idle
// phases pooled), and with -rates records the p99s (oltp_write_p99_ms_*) in the rates file.
package main

import (
	"context"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"path/filepath"
	"strings"
	"syscall"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/shopsphere/shardflow/internal/capacity"
	"github.com/shopsphere/shardflow/internal/extract/extracttest"
	"github.com/shopsphere/shardflow/internal/fleet"
	"github.com/shopsphere/shardflow/internal/window"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if err := run(ctx, os.Args[1:], os.Stdout); err != nil {
		fmt.Fprintln(os.Stderr, "bench-shard-cost:", err)
		os.Exit(1)
	}
}

// config is the benchmark's flags.
type config struct {
	registry   string
	dir        string
	rates      string
	windowRows int
	otherRows  int
	backlog    int
	rate       float64
	phase      time.Duration
}

func run(ctx context.Context, args []string, stdout io.Writer) error {
	fs := flag.NewFlagSet("bench-shard-cost", flag.ContinueOnError)
	var c config
	fs.StringVar(&c.registry, "registry", "shards.yaml", "shards.yaml (its first shard is brought up alone, owning every bucket)")
	fs.StringVar(&c.dir, "dir", "var/bench/shardcost", "working directory (fleet, lake); removed first")
	fs.StringVar(&c.rates, "rates", "", "rates file to record the p99s in (empty: none)")
	fs.IntVar(&c.windowRows, "window-rows", 500_000, "rows inside the extracted window")
	fs.IntVar(&c.otherRows, "other-rows", 1_500_000, "rows of the table outside the window")
	fs.IntVar(&c.backlog, "backlog", 1_500_000, "orders rows written after the slot was created (the CDC catch-up's backlog)")
	fs.Float64Var(&c.rate, "rate", 150, "new orders per second of the traffic (each with its items, payment, later updates)")
	fs.DurationVar(&c.phase, "phase", 20*time.Second, "length of each phase")
	if err := fs.Parse(args); err != nil {
		return err
	}
	b, err := os.ReadFile(c.registry)
	if err != nil {
		return err
	}
	shardID := ""
	if i := strings.Index(string(b), "  - id: "); i >= 0 {
		shardID = strings.Fields(string(b[i+len("  - id: "):]))[0]
	}
	reg, err := extracttest.OneShard(b, shardID)
	if err != nil {
		return err
	}
	abs, err := filepath.Abs(c.dir)
	if err != nil {
		return err
	}
	_ = os.RemoveAll(abs)
	if err := os.MkdirAll(abs, 0o755); err != nil {
		return err
	}
	f, err := fleet.Up(ctx, fleet.Config{Dir: filepath.Join(abs, "fleet"), Registry: reg, Fast: true,
		Ports: map[string]int{shardID: fleet.DefaultBasePort + 91}})
	if err != nil {
		return fmt.Errorf("fleet up: %w", err)
	}
	defer func() { _ = f.Stop(context.WithoutCancel(ctx)) }()
	sh, _ := f.Shard(shardID)
	admin, err := pgx.Connect(ctx, sh.AdminDSN)
	if err != nil {
		return fmt.Errorf("connect shard %s: %w", shardID, err)
	}
	defer admin.Close(context.WithoutCancel(ctx))

	// The table: the window's rows and the rest, spread over a year before it.
	w := window.Window{Start: time.Date(2026, 3, 10, 12, 0, 0, 0, time.UTC)}
	w.End = w.Start.Add(reg.Extract.Window.Duration)
	custs := extracttest.CustomersOwnedBy(reg, shardID, w.Start, 5000, 1)
	fill := func(rows int, from, to time.Time, seed string) error {
		const chunk = 100_000 // one transaction each, as a catch-up sees many
		for done := 0; done < rows; done += chunk {
			n := min(chunk, rows-done)
			span := to.Sub(from) / time.Duration((rows+chunk-1)/chunk)
			at := from.Add(span * time.Duration(done/chunk))
			if err := extracttest.Fill(ctx, admin, reg, extracttest.Spec{Table: "orders", Rows: n, From: at, To: at.Add(span), Customers: custs, Seed: fmt.Sprintf("%s-%d", seed, done)}); err != nil {
				return err
			}
		}
		return nil
	}
	st := time.Now()
	if err := fill(c.windowRows, w.Start, w.End, "window"); err != nil {
		return err
	}
	if err := fill(c.otherRows, w.Start.Add(-365*24*time.Hour), w.Start, "other"); err != nil {
		return err
	}
	fmt.Fprintf(os.Stderr, "filled %d rows in %s\n", c.windowRows+c.otherRows, time.Since(st).Round(time.Millisecond))
	// The slot exists before the backlog is written: draining it is the catch-up.
	slot, err := newSlot(ctx, admin, sh)
	if err != nil {
		return err
	}
	defer slot.drop(context.WithoutCancel(ctx), admin)
	st = time.Now()
	if err := fill(c.backlog, w.End, w.End.Add(200*24*time.Hour), "backlog"); err != nil {
		return err
	}
	if _, err := admin.Exec(ctx, "VACUUM ANALYZE orders"); err != nil {
		return fmt.Errorf("vacuum orders: %w", err)
	}
	fmt.Fprintf(os.Stderr, "backlog of %d rows behind slot %s in %s\n", c.backlog, slot.name, time.Since(st).Round(time.Millisecond))
	var total int64
	if err := admin.QueryRow(ctx, "SELECT count(*) FROM orders").Scan(&total); err != nil {
		return err
	}

	load0 := loadAvg()
	began := time.Now().UTC()
	b0 := &bench{reg: reg, shard: sh, window: w, lake: filepath.Join(abs, "lake"), rate: c.rate, phase: c.phase}
	var phases []*phase
	for _, p := range []struct {
		name, load string
		during     func(context.Context) (string, error)
	}{
		{"idle", "none (traffic only)", nil},
		{"extract", fmt.Sprintf("extract-window of closed window %s (%d rows), back to back", w, c.windowRows), b0.extractLoop},
		{"extract read only", "the same window's read alone: COPY (SELECT <landed columns> ... ORDER BY watermark, key) TO STDOUT, back to back, no client-side tokenize/Parquet CPU", b0.copyLoop},
		{"cdc", fmt.Sprintf("CDC catch-up: pg_recvlogical (pgoutput) draining a slot with a %d-row backlog, stand-in for Debezium's read", c.backlog), func(ctx context.Context) (string, error) { return slot.drain(ctx, admin) }},
		{"idle again", "none (traffic only)", nil},
	} {
		fmt.Fprintf(os.Stderr, "phase %s (%s)\n", p.name, c.phase)
		ph, err := b0.measure(ctx, p.name, p.load, p.during)
		if err != nil {
			return fmt.Errorf("phase %s: %w", p.name, err)
		}
		phases = append(phases, ph)
	}
	load1 := loadAvg()
	idle := pool("idle (both)", phases[0], phases[len(phases)-1])
	report(stdout, reportHead{shard: shardID, tableRows: total, rate: c.rate, phase: c.phase, at: began, load0: load0, load1: load1}, idle, phases)
	if c.rates == "" {
		return nil
	}
	ext, cdcp := phases[1], phases[3]
	note := fmt.Sprintf("workload at %.0f new orders/s on one shard (%d-row orders table), write = BEGIN..COMMIT of one workload transaction; load average %s → %s (machine shared)", c.rate, total, load0, load1)
	return capacity.UpdateRates(c.rates, capacity.Rates{
		"oltp_write_p99_ms_idle": {Value: round2(idle.p(0.99)), Unit: "ms", Bench: "make bench-shard-cost", Note: note + "; both idle phases pooled"},
		"oltp_write_p99_ms_extract": {Value: round2(ext.p(0.99)), Unit: "ms", Reference: round2(idle.p(0.99)), Bench: "make bench-shard-cost",
			Note: note + "; during extract-window of a " + fmt.Sprint(c.windowRows) + "-row closed window, back to back; reference: idle p99, same run"},
		"oltp_write_p99_ms_cdc": {Value: round2(cdcp.p(0.99)), Unit: "ms", Reference: round2(idle.p(0.99)), Bench: "make bench-shard-cost",
			Note: note + "; during a CDC catch-up (pg_recvlogical pgoutput draining a slot backlog, a stand-in for Debezium's read); reference: idle p99, same run"},
	})
}

// loadAvg is the 1, 5 and 15-minute load averages, as /proc/loadavg says.
func loadAvg() string {
	b, err := os.ReadFile("/proc/loadavg")
	if err != nil {
		return "?"
	}
	f := strings.Fields(string(b))
	if len(f) < 3 {
		return "?"
	}
	return strings.Join(f[:3], " ")
}

func round2(v float64) float64 { return float64(int64(v*100+0.5)) / 100 }

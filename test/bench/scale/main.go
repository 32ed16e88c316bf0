// Command scale is the fleet-size benchmark (`make bench-scale`, not in CI). It
// measures what changes as the fleet grows from one shard towards the brief's 64:
//
//   - parallel: the same window extracted concurrently on k = 1, 2, 4, 8 shards (each
//     its own PostgreSQL cluster), aggregate and per-shard rows/s and CPU seconds per
//     million rows, with COPY ... TO STDOUT on the same windows beside it (parallel.go);
//   - dags: the DAGs rendered for registries of 16 and 64 shards, parsed by Airflow's
//     DagBag from the project venv: parse seconds, tasks per DAG, pods per hour (dags.go);
//   - e2e: the batch demo (test/demo.sh) on 64 local shards with small data, its wall
//     time and the time of each stage, and its reconciliation of fact_orders with the
//     shards (e2e.go).
//
// Each part prints a table; with -rates the headline figures are merged into the rates
// file (internal/capacity) that `shardctl capacity` reads.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/shopsphere/shardflow/internal/capacity"
)

// Bench names this benchmark in the rates file.
const Bench = "make bench-scale"

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if err := run(ctx, os.Args[1:], os.Stdout); err != nil {
		fmt.Fprintln(os.Stderr, "bench-scale:", err)
		os.Exit(1)
	}
}

// config is every part's settings, from the flags.
type config struct {
	registry string // the base shards.yaml every generated registry derives from
	dir      string // working directory, one subdirectory per part
	root     string // the repository root (test/demo.sh, var/bin)

	parallelShards []int
	windowRows     int
	runs           int
	basePort       int

	dagShards []int
	python    string
	dagRuns   int

	e2eShards   int
	e2eOrders   int
	e2eBasePort int
}

func run(ctx context.Context, args []string, stdout io.Writer) error {
	fs := flag.NewFlagSet("bench-scale", flag.ContinueOnError)
	var c config
	fs.StringVar(&c.registry, "registry", "shards.yaml", "the base shards.yaml (generated registries copy its tables and settings)")
	fs.StringVar(&c.dir, "dir", "var/bench/scale", "working directory (each part starts its own subdirectory afresh)")
	parts := fs.String("parts", "parallel,dags,e2e", "parts to run, comma-separated: parallel, dags, e2e")
	ratesPath := fs.String("rates", "", "merge the headline figures into this rates file (empty: write none)")
	pshards := fs.String("shards", "1,2,4,8", "parallel: shard counts to extract concurrently")
	fs.IntVar(&c.windowRows, "window-rows", 200_000, "parallel: rows in the window on each shard")
	fs.IntVar(&c.runs, "runs", 3, "parallel: measurements per figure (the best wall time is reported)")
	fs.IntVar(&c.basePort, "base-port", 26100, "parallel: port of the first shard")
	dshards := fs.String("dag-shards", "16,64", "dags: shard counts to render and parse")
	fs.StringVar(&c.python, "python", "var/venv/airflow/bin/python", "dags: the Python of the Airflow venv (make deps-airflow)")
	fs.IntVar(&c.dagRuns, "dag-runs", 3, "dags: warm parses after the first (the best is reported)")
	fs.IntVar(&c.e2eShards, "e2e-shards", 64, "e2e: shards of the batch demo")
	fs.IntVar(&c.e2eOrders, "e2e-orders", 6400, "e2e: orders of the demo's traffic")
	fs.IntVar(&c.e2eBasePort, "e2e-base-port", 26200, "e2e: port of the demo's first shard")
	if err := fs.Parse(args); errors.Is(err, flag.ErrHelp) {
		return nil
	} else if err != nil {
		return err
	}
	var err error
	if c.parallelShards, err = ints(*pshards); err != nil {
		return fmt.Errorf("-shards: %w", err)
	}
	if c.dagShards, err = ints(*dshards); err != nil {
		return fmt.Errorf("-dag-shards: %w", err)
	}
	if c.windowRows < 1 || c.runs < 1 || c.dagRuns < 1 || c.e2eShards < 1 || c.e2eOrders < 1 {
		return errors.New("-window-rows, -runs, -dag-runs, -e2e-shards and -e2e-orders must be positive")
	}
	if c.dir, err = filepath.Abs(c.dir); err != nil {
		return err
	}
	if c.root, err = os.Getwd(); err != nil {
		return err
	}
	if _, err := os.Stat(filepath.Join(c.root, "test", "demo.sh")); err != nil {
		return fmt.Errorf("run from the repository root: %w", err)
	}

	for _, p := range strings.Split(*parts, ",") {
		var rs capacity.Rates
		switch p = strings.TrimSpace(p); p {
		case "parallel":
			rs, err = runParallel(ctx, c, stdout)
		case "dags":
			rs, err = runDAGs(ctx, c, stdout)
		case "e2e":
			rs, err = runE2E(ctx, c, stdout)
		case "":
			continue
		default:
			return fmt.Errorf("-parts: unknown part %q (want parallel, dags or e2e)", p)
		}
		if err != nil {
			return fmt.Errorf("%s: %w", p, err)
		}
		// each part's figures are written as soon as it is done: a later part failing
		// does not lose them
		if *ratesPath == "" || len(rs) == 0 {
			continue
		}
		for k, v := range rs {
			v.Bench = Bench
			rs[k] = v
		}
		if err := capacity.UpdateRates(*ratesPath, rs); err != nil {
			return fmt.Errorf("%s: rates: %w", p, err)
		}
		fmt.Fprintf(stdout, "%s: %d figures merged into %s\n", p, len(rs), *ratesPath)
	}
	return nil
}

// header prints a table's title with the date and the machine's load, which the
// figures depend on (the machine is shared).
func header(w io.Writer, title string) {
	fmt.Fprintf(w, "\n%s\n(%s UTC, %s, load average %s)\n", title, time.Now().UTC().Format("2006-01-02 15:04"), capacity.MachineCores(), loadAverage())
}

// loadAverage is /proc/loadavg's three figures, or "unknown".
func loadAverage() string {
	b, err := os.ReadFile("/proc/loadavg")
	if err != nil {
		return "unknown"
	}
	f := strings.Fields(string(b))
	if len(f) < 3 {
		return "unknown"
	}
	return strings.Join(f[:3], " ")
}

// ints parses "1,2,4" into positive integers.
func ints(s string) ([]int, error) {
	var out []int
	for _, f := range strings.Split(s, ",") {
		n, err := strconv.Atoi(strings.TrimSpace(f))
		if err != nil || n < 1 {
			return nil, fmt.Errorf("%q is not a positive integer", f)
		}
		out = append(out, n)
	}
	return out, nil
}

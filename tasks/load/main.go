// Command load loads landed files into the warehouse's raw tables, file-level idempotent.
// See --help and docs/warehouse.md.
package main

import (
	"context"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"os"
	"strings"
	"time"

	"github.com/shopsphere/shardflow/internal/command"
	"github.com/shopsphere/shardflow/internal/exitcode"
	"github.com/shopsphere/shardflow/internal/landing"
	"github.com/shopsphere/shardflow/internal/load"
	"github.com/shopsphere/shardflow/internal/metrics"
	"github.com/shopsphere/shardflow/internal/objstore/backend"
	"github.com/shopsphere/shardflow/internal/objstore/dir"
	"github.com/shopsphere/shardflow/internal/registry"
	whbackend "github.com/shopsphere/shardflow/internal/warehouse/backend"
	"github.com/shopsphere/shardflow/internal/warehouse/duckdb"
	"github.com/shopsphere/shardflow/internal/window"
)

const help = `load loads landed files (a data file with its manifest) into raw.<table>.

Each data file's size and sha256 are checked against its manifest first; a file that
differs is refused (exit 1) and nothing of it is loaded. Then one warehouse transaction
per file: a key already loaded with the same sha256 is skipped, a key loaded with another
sha256 (a re-extracted window) has its rows replaced, and the rows' count and checksum are
checked against the manifest before the load history is written. Re-running is always
safe.

usage:
  load --shard s00 --table orders --window-start 2026-11-24T10:00Z --window-end 2026-11-24T11:00Z
  load --all [--table orders] [--shard s00]     every landed file not loaded yet, in key order
  load --all --source cdc --since 48h           only the dt= days of the last 48 hours
                                                (the CDC micro-batch: its listing stays a
                                                few days of keys however long the lake)

environment:
  SHARDFLOW_REGISTRY   path to shards.yaml (default shards.yaml)
  SHARDFLOW_ENV        environment in shards.yaml (default local): object store and warehouse
  <warehouse.dsn.env>  the Snowflake DSN (gosnowflake), e.g. SHARDFLOW_SNOWFLAKE_DSN
  AWS_ACCESS_KEY_ID, AWS_SECRET_ACCESS_KEY, AWS_SESSION_TOKEN, AWS_PROFILE
                       s3 object store credentials (else the SDK default chain:
                       IRSA, container or instance credentials); docs/objstore.md

exit codes: 0 done; 2 usage or configuration; 1 a landed file disagrees with its manifest
(or another permanent error); 75 retry later (store or warehouse unreachable, warehouse
locked by another writer, window not landed yet).

flags:
`

func main() {
	command.Main("load", func(ctx context.Context, env map[string]string) error {
		var runs []metrics.Run
		gateway := ""
		err := run(ctx, os.Args[1:], env, os.Stdout, os.Stderr, func(gw string, r metrics.Run) { gateway = gw; runs = append(runs, r) })
		for _, r := range runs {
			metrics.Report(ctx, env, gateway, r, os.Stderr)
		}
		return err
	})
}

type options struct {
	shard, table string
	start, end   time.Time
	all          bool
	source       string        // with all: batch or cdc
	since        time.Duration // with all: only the dt= days since now minus this
	verbose      bool
}

func parseArgs(args []string, stderr io.Writer) (*options, error) {
	fs := command.NewFlagSet("load", stderr, func(fs *flag.FlagSet) { fmt.Fprint(stderr, help); fs.PrintDefaults() })
	var o options
	var start, end string
	fs.StringVar(&o.shard, "shard", "", "shard id (required with --window-start; a filter with --all)")
	fs.StringVar(&o.table, "table", "", "table (required with --window-start; a filter with --all)")
	fs.StringVar(&start, "window-start", "", "window start, RFC 3339 (UTC), e.g. 2026-11-24T10:00Z")
	fs.StringVar(&end, "window-end", "", "window end, RFC 3339 (UTC)")
	fs.BoolVar(&o.all, "all", false, "load every landed file not loaded yet")
	fs.StringVar(&o.source, "source", "", "with --all: only batch or cdc files")
	fs.DurationVar(&o.since, "since", 0, "with --all: only the dt= days from now minus this on (files dated earlier are not seen: a run without --since catches up)")
	fs.BoolVar(&o.verbose, "v", false, "log every file, also the skipped ones")
	if err := command.Parse(fs, args); err != nil {
		return nil, err
	}
	if err := command.NoArgs(fs); err != nil {
		return nil, err
	}
	if o.source != "" && o.source != string(landing.Batch) && o.source != string(landing.CDC) {
		return nil, exitcode.Errorf(exitcode.Usage, "--source %q: want batch or cdc", o.source)
	}
	if o.since < 0 {
		return nil, exitcode.Errorf(exitcode.Usage, "--since must be positive")
	}
	if o.all {
		if start != "" || end != "" {
			return nil, exitcode.Errorf(exitcode.Usage, "--all loads every window: drop --window-start/--window-end")
		}
		return &o, nil
	}
	if o.source != "" || o.since != 0 {
		return nil, exitcode.Errorf(exitcode.Usage, "--source and --since go with --all")
	}
	if o.shard == "" || o.table == "" || start == "" || end == "" {
		return nil, exitcode.Errorf(exitcode.Usage, "give --shard, --table, --window-start and --window-end, or --all")
	}
	var err error
	if o.start, err = window.Parse(start); err != nil {
		return nil, exitcode.Errorf(exitcode.Usage, "--window-start: %v", err)
	}
	if o.end, err = window.Parse(end); err != nil {
		return nil, exitcode.Errorf(exitcode.Usage, "--window-end: %v", err)
	}
	if !o.end.After(o.start) {
		return nil, exitcode.Errorf(exitcode.Usage, "--window-end %s is not after --window-start %s", end, start)
	}
	return &o, nil
}

// run loads; report receives, for each shard it loaded, what to push (metrics.Report).
func run(ctx context.Context, args []string, env map[string]string, stdout, stderr io.Writer, report func(gateway string, r metrics.Run)) error {
	o, err := parseArgs(args, stderr)
	if err != nil {
		return err
	}
	sel, err := registry.Select(env)
	if err != nil {
		return exitcode.Wrap(exitcode.Usage, err)
	}
	reg, regPath, target := sel.Registry, sel.Path, sel.Env
	if o.table != "" {
		if _, ok := reg.Table(o.table); !ok {
			return exitcode.Errorf(exitcode.Usage, "--table %s is not in %s", o.table, regPath)
		}
	}
	if o.shard != "" {
		if _, ok := reg.Shard(o.shard); !ok {
			return exitcode.Errorf(exitcode.Usage, "--shard %s is not in %s", o.shard, regPath)
		}
	}
	level := slog.LevelInfo
	if o.verbose {
		level = slog.LevelDebug
	}
	log := slog.New(slog.NewTextHandler(stderr, &slog.HandlerOptions{Level: level}))

	store, err := backend.Open(ctx, target.ObjectStore, backend.CredentialsFromEnv(env))
	if err != nil {
		return err
	}
	wh, err := whbackend.Open(ctx, target.Warehouse, env)
	if err != nil {
		return err
	}
	defer wh.Close()
	if err := setFailpoint(wh, env["SHARDFLOW_FAILPOINT"], stderr); err != nil {
		return exitcode.Wrap(exitcode.Usage, err)
	}
	if err := wh.Ensure(ctx, reg.Tables); err != nil {
		return exitcode.Wrap(exitcode.Retryable, err)
	}
	l := &load.Loader{Store: store, Warehouse: wh, Registry: reg, Log: log}
	began := time.Now()
	var sums []load.Summary
	if o.all {
		f := load.Filter{Table: o.table, Shard: o.shard, Source: landing.Source(o.source)}
		if o.since > 0 {
			f.Since = time.Now().Add(-o.since)
		}
		sums, err = l.LoadAll(ctx, f)
		// one group per shard and source: the CDC micro-batch's loads and a catch-up of
		// batch files are told apart (job load-cdc, load-batch, load-all)
		source := o.source
		if source == "" {
			source = "all"
		}
		for _, s := range sums {
			var serr error
			if s.Failed > 0 {
				serr = exitcode.Errorf(exitcode.Permanent, "%d files failed", s.Failed)
			}
			report(target.Monitoring.Pushgateway, metrics.Run{Fleet: reg.Fleet, Job: "load-" + source, Shard: s.Shard, Table: o.table, Err: serr, CommitLast: s.CommitLast})
		}
	} else {
		var s load.Summary
		s, err = l.LoadWindow(ctx, o.table, o.shard, window.Window{Start: o.start, End: o.end})
		sums = []load.Summary{s}
		r := metrics.Run{Fleet: reg.Fleet, Job: "load", Shard: o.shard, Table: o.table, Err: err, Rows: s.Rows, Duration: time.Since(began)}
		if err == nil {
			r.WindowEnd = o.end
		}
		report(target.Monitoring.Pushgateway, r)
	}
	var total load.Summary
	for _, s := range sums {
		fmt.Fprintf(stdout, "shard %s: %d files, %d loaded (%d replaced), %d skipped, %d failed, %d rows\n",
			s.Shard, s.Files, s.Loaded, s.Replaced, s.Skipped, s.Failed, s.Rows)
		log.Info("load summary", slog.String("shard", s.Shard), slog.Int("files", s.Files), slog.Int("loaded", s.Loaded),
			slog.Int("skipped", s.Skipped), slog.Int("failed", s.Failed), slog.Int64("rows", s.Rows))
		total.Files += s.Files
		total.Loaded += s.Loaded
		total.Rows += s.Rows
	}
	log.Info("load done", slog.Int("files", total.Files), slog.Int("loaded", total.Loaded), slog.Int64("rows", total.Rows),
		slog.Duration("duration", time.Since(began)))
	return err
}

// The directory store reads files in place; S3 objects are copied to a temp file.
var _ load.LocalStore = dir.Store{}

// setFailpoint makes the run stop dead inside the load transaction, for the crash test:
//
//	SHARDFLOW_FAILPOINT=in-transaction:<step>   step: deleted, inserted, verified, history
//
// It prints "failpoint <spec> reached" to stderr and blocks until the process is killed.
// Never set in production; DuckDB only.
func setFailpoint(w *whbackend.Opened, spec string, stderr io.Writer) error {
	if spec == "" {
		return nil
	}
	name, step, _ := strings.Cut(spec, ":")
	d, ok := w.Warehouse.(*duckdb.Warehouse)
	if name != "in-transaction" || !ok {
		return fmt.Errorf("SHARDFLOW_FAILPOINT=%s: want in-transaction:<step> on a duckdb warehouse", spec)
	}
	d.Failpoint = func(s string) error {
		if s == step {
			fmt.Fprintf(stderr, "failpoint %s reached\n", spec)
			select {}
		}
		return nil
	}
	return nil
}

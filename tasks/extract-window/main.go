// Command extract-window lands one closed window of one table of one shard: Parquet and
// manifest at a deterministic key, PCI columns tokenized in-process. See --help and
// docs/extract.md.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"os"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/shopsphere/shardflow/internal/buildinfo"
	"github.com/shopsphere/shardflow/internal/command"
	"github.com/shopsphere/shardflow/internal/exitcode"
	"github.com/shopsphere/shardflow/internal/extract"
	"github.com/shopsphere/shardflow/internal/metrics"
	"github.com/shopsphere/shardflow/internal/pause"
	"github.com/shopsphere/shardflow/internal/registry"
	"github.com/shopsphere/shardflow/internal/window"
)

const help = `extract-window lands one closed window [start, end) of one table of one shard.

It checks the shard's columns against shards.yaml (exit 4 when a declared column was
dropped, renamed or retyped; a column being rolled out, adding: true, that the shard lacks
yet lands NULL, named in _absent_columns; a column shards.yaml does not declare is never
read, only warned of: docs/runbooks/schema-change.md), refuses a window
that is not closed yet (exit 75: end > shard now() - extract.safety_lag, or a transaction
that started before end is still open, or a prepared transaction is pending), then reads
the window in one REPEATABLE READ snapshot with keyset pages on the (updated_at, pk) index,
keeps the rows whose bucket the shard owned at their updated_at, tokenizes PCI columns,
and writes

  landing/<table>/source=batch/shard=<id>/dt=<day>/<table>__<id>__<start>__<end>.parquet

then its .manifest.json (rows, checksum, sha256). Re-running overwrites the same two
objects, so a retry never duplicates. The window must be one extract.window long and
aligned to it (UTC).

usage:
  extract-window --shard s00 --table orders --window 2026-11-24T10:00Z
  extract-window --shard s00 --table orders --window-start 2026-11-24T10:00Z --window-end 2026-11-24T11:00Z
  extract-window ... --dry-run      print the plan (queries, keys, closedness, schema), write nothing

environment:
  SHARDFLOW_REGISTRY   path to shards.yaml (default shards.yaml)
  SHARDFLOW_ENV        environment in shards.yaml (default local): object store
  <shards[].connection.extract.env>   the shard's DSN (extract role), e.g. SHARDFLOW_S00_EXTRACT_DSN
  <shards[].connection.standby.env>   optional: a hot standby's DSN (extract role); the
                       window's closure is checked on the primary, and the rows are read
                       at the standby once it has replayed past that check
                       (docs/decisions/0026; exit 75 if it has not within 5 minutes)
  <tokenizer.key.env>  the tokenizer key, at least 32 bytes, e.g. SHARDFLOW_TOKEN_KEY
  AWS_ACCESS_KEY_ID, AWS_SECRET_ACCESS_KEY, AWS_SESSION_TOKEN, AWS_PROFILE
                       s3 object store credentials (else the SDK default chain:
                       IRSA, container or instance credentials); docs/objstore.md

exit codes: 0 landed; 2 usage or configuration; 3 data check failed (a row with a wrong
bucket, or the self-check of streamed rows against the snapshot's checksum); 4 schema
drift (a declared column dropped, renamed or retyped); 75 retry later (window not closed, shard or object store unreachable); 99 the
shard is paused (shardctl shard pause): nothing done, Airflow marks it skipped; 1 other.

flags:
`

func main() {
	command.Main("extract-window", func(ctx context.Context, env map[string]string) error {
		var m metricsRun
		err := run(ctx, os.Args[1:], env, os.Stdout, os.Stderr, &m)
		m.Err = err
		metrics.Report(ctx, env, m.gateway, m.Run, os.Stderr)
		return err
	})
}

// metricsRun is what a run pushes (metrics.Report), and where.
type metricsRun struct {
	metrics.Run
	gateway string
}

type options struct {
	shard, table       string
	start, end, window string
	dryRun             bool
}

func run(ctx context.Context, args []string, env map[string]string, stdout, stderr io.Writer, m *metricsRun) error {
	fs := command.NewFlagSet("extract-window", stderr, func(fs *flag.FlagSet) { fmt.Fprint(stderr, help); fs.PrintDefaults() })
	var o options
	fs.StringVar(&o.shard, "shard", "", "shard id, as in shards.yaml (required)")
	fs.StringVar(&o.table, "table", "", "table name, as in shards.yaml (required)")
	fs.StringVar(&o.start, "window-start", "", "window start, RFC3339 (with --window-end)")
	fs.StringVar(&o.end, "window-end", "", "window end, RFC3339, exclusive")
	fs.StringVar(&o.window, "window", "", "window start; the window is [start, start + extract.window)")
	fs.BoolVar(&o.dryRun, "dry-run", false, "print the plan and write nothing")
	if err := command.Parse(fs, args); err != nil {
		return err
	}
	if err := command.NoArgs(fs); err != nil {
		return err
	}
	sel, err := registry.Select(env)
	if err != nil {
		return exitcode.Wrap(exitcode.Usage, err)
	}
	reg := sel.Registry
	job, err := jobOf(o, reg)
	if err != nil {
		return exitcode.Wrap(exitcode.Usage, err)
	}
	if !o.dryRun {
		m.Run = metrics.Run{Fleet: reg.Fleet, Job: "extract-window", Shard: job.Shard, Table: job.Table}
		m.gateway = sel.Env.Monitoring.Pushgateway
	}
	shard, _ := reg.Shard(job.Shard)
	dsn := env[shard.Connection.Extract.Env]
	if dsn == "" {
		return exitcode.Errorf(exitcode.Usage, "shard %s: environment variable %s (its extract DSN) is not set", job.Shard, shard.Connection.Extract.Env)
	}
	log := slog.New(slog.NewTextHandler(stderr, nil))

	deps, err := openDeps(ctx, sel, env)
	if err != nil {
		return err
	}
	// a paused shard is not touched (it may be in maintenance): exit 99, skipped
	if p, err := pause.Get(ctx, deps.store, job.Shard); err != nil {
		return err
	} else if p != nil {
		m.Run.Job = "" // nothing ran: nothing to report
		fmt.Fprintf(stdout, "skipped %s: %v\n", job, p.Err())
		return p.Err()
	}

	conn, err := pgx.Connect(ctx, dsn)
	if err != nil {
		// pgx's connect error names host, user and database, never the password
		return exitcode.Wrap(exitcode.Retryable, fmt.Errorf("%s: connect to shard (%s): %w", job, shard.Connection.Extract.Env, err))
	}
	defer conn.Close(context.WithoutCancel(ctx))
	_, _ = conn.Exec(ctx, "SET application_name = 'shardflow extract-window'")

	ex := &extract.Extractor{Registry: reg, Conn: conn, Store: deps.store, Tokenizer: deps.tokenizer, NewWriter: deps.newWriter,
		CodeVersion: buildinfo.CodeVersion(), Logger: log}
	if fp := env["SHARDFLOW_FAILPOINT"]; fp != "" {
		if err := setFailpoint(ex, fp, stderr); err != nil {
			return exitcode.Wrap(exitcode.Usage, err)
		}
	}
	if o.dryRun {
		p, err := ex.Plan(ctx, job)
		if err != nil {
			return err
		}
		printPlan(stdout, p)
		return nil
	}
	res, err := runOn(ctx, ex, job, shard, env, log)
	if err != nil {
		return err
	}
	m.WindowEnd, m.Rows, m.Duration = job.Window.End, res.Manifest.Rows, res.Duration
	fmt.Fprintf(stdout, "landed %s: %d rows (%d scanned, %d not owned), checksum %s, %d bytes, %s\n",
		res.DataKey, res.Manifest.Rows, res.Scanned, res.Unowned, res.Manifest.Checksum, res.Manifest.DataBytes, res.Duration.Round(time.Millisecond))
	return nil
}

func jobOf(o options, reg *registry.Registry) (extract.Job, error) {
	if o.shard == "" || o.table == "" {
		return extract.Job{}, errors.New("--shard and --table are required")
	}
	var w window.Window
	var err error
	switch {
	case o.window != "" && (o.start != "" || o.end != ""):
		return extract.Job{}, errors.New("give either --window or --window-start/--window-end")
	case o.window != "":
		if w.Start, err = window.Parse(o.window); err != nil {
			return extract.Job{}, fmt.Errorf("--window: %w", err)
		}
		w.End = w.Start.Add(reg.Extract.Window.Duration)
	case o.start != "" && o.end != "":
		if w.Start, err = window.Parse(o.start); err != nil {
			return extract.Job{}, fmt.Errorf("--window-start: %w", err)
		}
		if w.End, err = window.Parse(o.end); err != nil {
			return extract.Job{}, fmt.Errorf("--window-end: %w", err)
		}
	default:
		return extract.Job{}, errors.New("a window is required: --window START, or --window-start and --window-end")
	}
	if _, ok := reg.Shard(o.shard); !ok {
		return extract.Job{}, fmt.Errorf("--shard %s is not in shards.yaml", o.shard)
	}
	if _, ok := reg.Table(o.table); !ok {
		return extract.Job{}, fmt.Errorf("--table %s is not in shards.yaml", o.table)
	}
	if err := w.Aligned(reg.Extract.Window.Duration); err != nil {
		return extract.Job{}, err
	}
	return extract.Job{Shard: o.shard, Table: o.table, Window: w}, nil
}

func printPlan(w io.Writer, p *extract.Plan) {
	fmt.Fprintf(w, "plan for %s (dry run: nothing written)\n", p.Job)
	fmt.Fprintf(w, "  data key:      %s\n  manifest key:  %s\n", p.DataKey, p.ManifestKey)
	switch s := p.Schema; {
	case p.SchemaError != nil:
		fmt.Fprintf(w, "  schema:        DRIFT: %v (a run exits 4)\n", p.SchemaError)
	case len(s.Absent) == 0 && len(s.Undeclared) == 0:
		fmt.Fprintf(w, "  schema:        matches shards.yaml\n")
	default:
		fmt.Fprintf(w, "  schema:        lands, with differences:\n")
		if len(s.Absent) > 0 {
			fmt.Fprintf(w, "    rolling out, not on the shard yet (NULL, named in _absent_columns): %s\n", s.AbsentList())
		}
		for _, d := range s.Undeclared {
			fmt.Fprintf(w, "    WARNING %s\n", d)
		}
	}
	if p.Closedness.Closed {
		fmt.Fprintf(w, "  closed:        yes (shard now %s, safety lag %s)\n", p.Closedness.ShardNow.UTC().Format(time.RFC3339), p.SafetyLag)
	} else {
		fmt.Fprintf(w, "  closed:        NO: %v (a run exits 75)\n", p.Closedness.Err)
	}
	var owned []string
	for _, iv := range p.Intervals {
		s := iv.Range.String()
		if !iv.From.IsZero() {
			s += " from " + iv.From.UTC().Format(time.RFC3339)
		}
		if !iv.To.IsZero() {
			s += " until " + iv.To.UTC().Format(time.RFC3339)
		}
		owned = append(owned, s)
	}
	fmt.Fprintf(w, "  ownership:     buckets %s\n", strings.Join(owned, "; "))
	fmt.Fprintf(w, "  columns:       %s\n", strings.Join(p.Columns, ", "))
	if len(p.Dropped) > 0 {
		fmt.Fprintf(w, "  never read:    %s (pci: drop)\n", strings.Join(p.Dropped, ", "))
	}
	fmt.Fprintf(w, "  page size:     %d\n  page query:    %s\n  self-check:    %s\n", p.PageSize, p.PageQuery, p.CheckQuery)
	if p.PlanSummary != "" {
		scan := "index only, no sequential scan"
		if !p.IndexScanned {
			scan = "SEQUENTIAL SCAN: expected only on a table of a few pages, where PostgreSQL prefers it; on a large table, check the watermark index"
		}
		fmt.Fprintf(w, "  query plan:    %s (%s)\n", p.PlanSummary, scan)
	}
}

// runOn lands the window from the shard's primary, or, when shards.yaml names a hot
// standby for it (connection.standby), from the standby once it has replayed past the
// closed-window check made on the primary (decisions/0026).
func runOn(ctx context.Context, ex *extract.Extractor, job extract.Job, shard registry.Shard, env map[string]string, log *slog.Logger) (*extract.Result, error) {
	ref := shard.Connection.Standby
	if ref.Env == "" {
		return ex.Run(ctx, job)
	}
	dsn := env[ref.Env]
	if dsn == "" {
		return nil, exitcode.Errorf(exitcode.Usage, "shard %s: environment variable %s (its standby DSN, connection.standby) is not set", job.Shard, ref.Env)
	}
	conn, err := pgx.Connect(ctx, dsn)
	if err != nil {
		return nil, exitcode.Wrap(exitcode.Retryable, fmt.Errorf("%s: connect to the shard's standby (%s): %w", job, ref.Env, err))
	}
	defer conn.Close(context.WithoutCancel(ctx))
	_, _ = conn.Exec(ctx, "SET application_name = 'shardflow extract-window'")
	res, rw, err := ex.RunFromStandby(ctx, job, &extract.Standby{Conn: conn})
	if rw != nil {
		log.Info("window read from the standby", "shard", job.Shard, "table", job.Table, "primary_lsn", rw.PrimaryLSN,
			"replay_lsn", rw.ReplayLSN, "waited", rw.Waited.Round(time.Millisecond))
	}
	return res, err
}

// Command dq checks the warehouse against the shards: completeness per shard and window,
// duplicate keys, ownership, PCI leaks and freshness. See --help and docs/dq.md.
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

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"

	"github.com/shopsphere/shardflow/internal/command"
	"github.com/shopsphere/shardflow/internal/dq"
	"github.com/shopsphere/shardflow/internal/exitcode"
	"github.com/shopsphere/shardflow/internal/metrics"
	"github.com/shopsphere/shardflow/internal/objstore/backend"
	"github.com/shopsphere/shardflow/internal/pause"
	"github.com/shopsphere/shardflow/internal/registry"
	"github.com/shopsphere/shardflow/internal/window"
)

const help = `dq checks that the warehouse holds exactly what the shards hold.

Per shard, table and window (--window, or --from/--to for every window in a range):
  completeness   the shard's rows of the window that it owned at their updated_at
                 (count + checksum over (key, row_version), read through the
                 (updated_at, pk) index) against the warehouse's batch rows of that
                 shard and window. When they differ, the (key, version) pairs: a source
                 version missing in the warehouse FAILs (data loss, up to 5 keys named);
                 a warehouse version whose key has a newer version on the shard, or is
                 gone, is "superseded since extract" (PASS, noted).
With --cross-shard, also:
  unowned_rows        rows of the window on a shard that did not own their bucket then
                      (copies ahead of a cutover pass; misrouted writes FAIL)
  duplicate_keys      a global key whose latest owned version comes from two shards
  batch_duplicates    a (key, version) loaded twice from one shard's batch files
  pci_leak_warehouse  Luhn-valid 13-19 digit numbers in any string column of raw.*
  freshness           per shard: newest warehouse watermark vs the shard's newest
With --pci-files: every landed Parquet file and manifest is scanned for card numbers.
pci_leak_warehouse reads the rows of the files loaded since it last found them clean
(its ledger dq.dq_pci_scanned, by file key and sha256); a table with a leak fails every
run until the rows are purged.
duplicate_keys and batch_duplicates check the keys of the files loaded since they last
passed (ledger dq.dq_duplicates_checked), every key when the ownership history changed.
With --full-scan: unowned_now counts rows of buckets a shard does not own now (there is
no index on bucket, so this is a sequential scan of every table), and pci_leak_warehouse
and the duplicate checks read every row of raw.*: off-peak only (a weekly run).

Results are appended to dq.dq_results in the warehouse and summarized on stdout.

usage:
  dq --window 2026-11-24T10:00Z [--shard s00,s01] [--table orders]
  dq --from 2026-11-24T00:00Z --to 2026-11-25T00:00Z --cross-shard --pci-files

environment: SHARDFLOW_REGISTRY, SHARDFLOW_ENV (warehouse and object store), each
shard's extract DSN variable (shards[].connection.extract.env), the warehouse DSN
variable for snowflake, AWS_* for an s3 object store.

exit codes: 0 every check passed (WARN allowed); 3 a check FAILED; 75 only
unreachable shards or warehouse (retry); 2 usage or configuration; 1 other.

flags:
`

func main() {
	command.Main("dq", func(ctx context.Context, env map[string]string) error {
		var m metrics.Run
		gateway := ""
		err := run(ctx, os.Args[1:], env, os.Stdout, os.Stderr, func(gw string, r metrics.Run) { gateway, m = gw, r })
		m.Err = err
		metrics.Report(ctx, env, gateway, m, os.Stderr)
		return err
	})
}

// run checks; report receives the run's results to push (metrics.Report).
func run(ctx context.Context, args []string, env map[string]string, stdout, stderr io.Writer, report func(gateway string, r metrics.Run)) error {
	fs := command.NewFlagSet("dq", stderr, func(fs *flag.FlagSet) { fmt.Fprint(stderr, help); fs.PrintDefaults() })
	shards := fs.String("shard", "", "comma-separated shard ids (default: every shard in shards.yaml)")
	tables := fs.String("table", "", "comma-separated tables (default: every table)")
	window := fs.String("window", "", "one window: its start; the window is [start, start + extract.window)")
	from := fs.String("from", "", "first window start of a range (with --to)")
	to := fs.String("to", "", "end of the range, exclusive (with --from)")
	cross := fs.Bool("cross-shard", false, "also run the cross-shard checks (duplicates, ownership, PCI in the warehouse, freshness)")
	fullScan := fs.Bool("full-scan", false, "also count rows of buckets a shard does not own now (sequential scans)")
	pciFiles := fs.Bool("pci-files", false, "also scan every landed file for card numbers")
	sla := fs.Duration("freshness-sla", 0, "batch freshness SLA (default 2 x extract.window + safety_lag)")
	runID := fs.String("run-id", "", "id of this run in dq_results (default: a new UUID)")
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
	reg, target := sel.Registry, sel.Env
	windows, err := windowsOf(*window, *from, *to, reg.Extract.Window.Duration)
	if err != nil {
		return exitcode.Wrap(exitcode.Usage, err)
	}
	ids, err := pick(*shards, shardIDs(reg), "shard")
	if err != nil {
		return exitcode.Wrap(exitcode.Usage, err)
	}
	tbls, err := pick(*tables, tableNames(reg), "table")
	if err != nil {
		return exitcode.Wrap(exitcode.Usage, err)
	}
	if len(windows) == 0 && !*cross && !*pciFiles && !*fullScan {
		return exitcode.Errorf(exitcode.Usage, "nothing to check: give --window, --from/--to, --cross-shard, --pci-files or --full-scan")
	}
	if *runID == "" {
		*runID = uuid.NewString()
	}
	log := slog.New(slog.NewTextHandler(stderr, nil))

	// a paused shard is not checked (it may be in maintenance; its windows were skipped
	// and run again on resume)
	ids, paused, err := unpaused(ctx, target, env, ids, stdout)
	if err != nil {
		return err
	}
	sources := map[string]dq.SourceConn{}
	for _, id := range ids {
		sh, _ := reg.Shard(id)
		dsn := env[sh.Connection.Extract.Env]
		if dsn == "" {
			return exitcode.Errorf(exitcode.Usage, "shard %s: environment variable %s (its extract DSN) is not set", id, sh.Connection.Extract.Env)
		}
		c, err := pgx.Connect(ctx, dsn)
		if err != nil {
			sources[id] = dq.SourceConn{Err: fmt.Errorf("connect to shard %s (%s): %w", id, sh.Connection.Extract.Env, err)}
			continue
		}
		defer c.Close(context.WithoutCancel(ctx))
		_, _ = c.Exec(ctx, "SET application_name = 'shardflow dq'")
		sources[id] = dq.SourceConn{Conn: c}
	}

	deps, err := openDeps(ctx, target, env, reg, *pciFiles)
	if err != nil {
		return err
	}
	defer deps.close()

	rep, err := dq.Run(ctx, dq.Config{
		Registry: reg, RunID: *runID, Tables: tbls, Windows: windows, Sources: sources,
		Warehouse: deps.warehouse, CrossShard: *cross, FullScan: *fullScan, Files: deps.files,
		FreshnessSLA: *sla, Paused: paused, Logger: log,
	})
	if err != nil {
		return err
	}
	if err := deps.warehouse.WriteResults(ctx, rep.Results); err != nil {
		return exitcode.Wrap(exitcode.Retryable, err)
	}
	scope := *shards
	if scope == "" {
		scope = "fleet"
	}
	rep.Summary(stdout)
	err = verdict(rep)
	report(target.Monitoring.Pushgateway, metrics.Run{Fleet: reg.Fleet, Job: "dq", Scope: scope, Err: err, Extra: resultSamples(rep)})
	return err
}

// resultSamples counts the results by shard, check and status, and the failed PCI leak
// checks by where they looked.
func resultSamples(rep *dq.Report) []metrics.Sample {
	counts := map[[3]string]float64{}
	leaks := map[string]float64{"warehouse": 0, "files": 0}
	for _, r := range rep.Results {
		counts[[3]string{r.Shard, r.Check, string(r.Status)}]++
		if r.Status == dq.Fail && r.Check == dq.CheckPCIWarehouse {
			leaks["warehouse"]++
		}
		if r.Status == dq.Fail && r.Check == dq.CheckPCIFiles {
			leaks["files"]++
		}
	}
	var out []metrics.Sample
	for k, n := range counts {
		out = append(out, metrics.Sample{Family: metrics.DQResults, Value: n,
			Labels: map[string]string{"shard": k[0], "check": k[1], "status": k[2]}})
	}
	for where, n := range leaks {
		out = append(out, metrics.Sample{Family: metrics.PCILeaks, Value: n, Labels: map[string]string{"where": where}})
	}
	return out
}

// verdict maps the results to the exit code: a FAIL other than an unreachable shard is
// 3; only unreachable shards is 75 (retry); otherwise success.
func verdict(rep *dq.Report) error {
	var fails, unreachable []string
	for _, r := range rep.Results {
		if r.Status != dq.Fail {
			continue
		}
		if r.Check == dq.CheckSourceReachable {
			unreachable = append(unreachable, r.Shard)
		} else {
			fails = append(fails, fmt.Sprintf("%s %s %s", r.Check, r.Shard, r.Table))
		}
	}
	switch {
	case len(fails) > 0:
		return exitcode.Errorf(exitcode.CheckFail, "run %s: %d checks failed: %s", rep.RunID, len(fails), strings.Join(fails, "; "))
	case len(unreachable) > 0:
		return exitcode.Errorf(exitcode.Retryable, "run %s: shards unreachable: %s", rep.RunID, strings.Join(unreachable, ", "))
	}
	return nil
}

func windowsOf(start, from, to string, size time.Duration) ([]window.Window, error) {
	switch {
	case start != "" && (from != "" || to != ""):
		return nil, errors.New("give either --window or --from/--to")
	case start != "":
		t0, err := window.Parse(start)
		if err != nil {
			return nil, fmt.Errorf("--window: %w", err)
		}
		w := window.Window{Start: t0, End: t0.Add(size)}
		return []window.Window{w}, w.Aligned(size)
	case from != "" || to != "":
		a, err := window.Parse(from)
		if err != nil {
			return nil, fmt.Errorf("--from: %w", err)
		}
		b, err := window.Parse(to)
		if err != nil {
			return nil, fmt.Errorf("--to: %w", err)
		}
		if a.Truncate(size) != a || b.Truncate(size) != b || !b.After(a) {
			return nil, fmt.Errorf("--from %s and --to %s must be aligned to extract.window %s, from before to", from, to, size)
		}
		var out []window.Window
		for t := a; t.Before(b); t = t.Add(size) {
			out = append(out, window.Window{Start: t, End: t.Add(size)})
		}
		return out, nil
	}
	return nil, nil
}

func pick(list string, all []string, what string) ([]string, error) {
	if list == "" {
		return all, nil
	}
	known := map[string]bool{}
	for _, a := range all {
		known[a] = true
	}
	var out []string
	for _, s := range strings.Split(list, ",") {
		s = strings.TrimSpace(s)
		if !known[s] {
			return nil, fmt.Errorf("--%s %s is not in shards.yaml", what, s)
		}
		out = append(out, s)
	}
	return out, nil
}

func shardIDs(reg *registry.Registry) []string {
	var out []string
	for _, s := range reg.Shards {
		out = append(out, s.ID)
	}
	return out
}

func tableNames(reg *registry.Registry) []string {
	var out []string
	for _, t := range reg.Tables {
		out = append(out, t.Name)
	}
	return out
}

// unpaused drops the paused shards from ids, saying so, and returns every paused
// shard with why.
func unpaused(ctx context.Context, target *registry.Environment, env map[string]string, ids []string, stdout io.Writer) ([]string, map[string]string, error) {
	store, err := backend.Open(ctx, target.ObjectStore, backend.CredentialsFromEnv(env))
	if err != nil {
		return nil, nil, fmt.Errorf("dq: object store (the shards' pauses): %w", err)
	}
	ps, err := pause.List(ctx, store)
	if err != nil {
		return nil, nil, fmt.Errorf("dq: %w", err)
	}
	paused := map[string]string{}
	for _, p := range ps {
		paused[p.Shard] = fmt.Sprintf("by %s since %s: %s", p.By, p.At.UTC().Format(time.RFC3339), p.Reason)
	}
	var out []string
	for _, id := range ids {
		if why, ok := paused[id]; ok {
			fmt.Fprintf(stdout, "not checked: shard %s is paused %s\n", id, why)
			continue
		}
		out = append(out, id)
	}
	return out, paused, nil
}

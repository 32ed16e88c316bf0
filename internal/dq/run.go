package dq

import (
	"context"
	"fmt"
	"log/slog"
	"sort"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/shopsphere/shardflow/internal/registry"
	"github.com/shopsphere/shardflow/internal/window"
)

// Config is one dq run.
type Config struct {
	Registry *registry.Registry
	RunID    string
	Tables   []string        // default: every table in shards.yaml
	Windows  []window.Window // windows for completeness and unowned rows
	// Sources are the shards to check, with a connection (extract role) or the error
	// that prevented it: an unreachable shard fails its own checks only.
	Sources   map[string]SourceConn
	Warehouse *Warehouse

	CrossShard bool  // duplicate keys, batch duplicates, PCI scan of the warehouse, freshness
	FullScan   bool  // also count rows of buckets a shard does not own now (sequential scans)
	Files      Files // when set, also scan every landed Parquet file for PANs
	// FreshnessSLA overrides the batch freshness SLA (default 2 × extract.window + safety_lag).
	FreshnessSLA time.Duration
	Logger       *slog.Logger
	Now          func() time.Time
}

// SourceConn is a shard's connection or why there is none.
type SourceConn struct {
	Conn *pgx.Conn
	Err  error
}

// Run executes the checks and returns every result. It fails (error) only when it cannot
// run at all; failed checks are results with status FAIL.
func Run(ctx context.Context, c Config) (*Report, error) {
	now := time.Now
	if c.Now != nil {
		now = c.Now
	}
	log := c.Logger
	if log == nil {
		log = slog.Default()
	}
	tables := c.Tables
	if len(tables) == 0 {
		for _, t := range c.Registry.Tables {
			tables = append(tables, t.Name)
		}
	}
	rep := &Report{RunID: c.RunID}
	add := func(r Result) {
		r.RunID, r.CheckedAt = c.RunID, now().UTC()
		rep.Results = append(rep.Results, r)
		log.Info("dq check", "check", r.Check, "status", string(r.Status), "shard", r.Shard, "table", r.Table, "detail", r.Detail)
	}
	shards := make([]string, 0, len(c.Sources))
	for s := range c.Sources {
		shards = append(shards, s)
	}
	sort.Strings(shards)

	for _, shard := range shards {
		sc := c.Sources[shard]
		if sc.Err != nil {
			add(Result{Check: CheckSourceReachable, Shard: shard, Status: Fail, Detail: sc.Err.Error()})
			continue
		}
		src := &Source{Registry: c.Registry, Shard: shard, Conn: sc.Conn}
		for _, table := range tables {
			for _, w := range c.Windows {
				if c.Warehouse != nil {
					add(Completeness(ctx, src, c.Warehouse, table, w))
				}
				if c.CrossShard {
					add(unownedRows(ctx, c.Registry, src, table, w))
				}
			}
			if c.FullScan {
				add(unownedNow(ctx, src, table))
			}
		}
	}

	if c.CrossShard && c.Warehouse != nil {
		for _, table := range tables {
			add(countCheck(CheckDuplicateKeys, table, "global keys whose latest owned version comes from more than one shard",
				func() (int64, []string, error) { return c.Warehouse.DuplicateLatest(ctx, table) }))
			add(countCheck(CheckBatchDupes, table, "(key, version) pairs loaded more than once from one shard's batch files",
				func() (int64, []string, error) { return c.Warehouse.BatchDuplicates(ctx, table) }))
		}
		for _, r := range scanWarehousePCI(ctx, c.Warehouse) {
			add(r)
		}
		for _, table := range tables {
			for _, r := range freshness(ctx, c, table, now()) {
				add(r)
			}
		}
	}
	if c.Files != nil {
		for _, r := range ScanFiles(ctx, c.Files, tables) {
			add(r)
		}
	}
	return rep, nil
}

func countCheck(check, table, what string, f func() (int64, []string, error)) Result {
	r := Result{Check: check, Table: table}
	n, keys, err := f()
	switch {
	case err != nil:
		r.Status, r.Detail = Fail, err.Error()
	case n > 0:
		r.Status, r.Detail = Fail, fmt.Sprintf("%d %s: %s", n, what, strings.Join(first(keys), ", "))
	default:
		r.Status = Pass
	}
	r.WarehouseCount = i64(n)
	return r
}

// unownedRows looks at the rows of one window that the shard did not own at their
// instant (indexed: the watermark range). Rows of a bucket the shard owns later are
// copies made before a move's cutover: expected, WARN-free. Any other such row is a
// write the application sent to the wrong shard: the ownership filter excludes it from
// analytics, so it is missing there: FAIL.
func unownedRows(ctx context.Context, reg *registry.Registry, src *Source, table string, w window.Window) Result {
	r := Result{Check: CheckUnownedRows, Shard: src.Shard, Table: table, Window: &w}
	bs, err := src.Unowned(ctx, table, w)
	if err != nil {
		r.Status, r.Detail = Fail, err.Error()
		return r
	}
	var copies, misrouted int64
	var bad []string
	for _, b := range bs {
		if ownsLater(reg, src.Shard, b.Bucket, b.Max) {
			copies += b.Rows
			continue
		}
		misrouted += b.Rows
		owner, _ := reg.OwnerAt(b.Bucket, b.Max)
		bad = append(bad, fmt.Sprintf("bucket %d: %d rows (owner at the time: %s)", b.Bucket, b.Rows, owner))
	}
	r.SourceCount = i64(copies + misrouted)
	switch {
	case misrouted > 0:
		r.Status = Fail
		r.Detail = fmt.Sprintf("%d rows written to shard %s for buckets it did not own at their instant; the ownership filter leaves them out of analytics: %s",
			misrouted, src.Shard, strings.Join(first(bad), "; "))
	case copies > 0:
		r.Status = Pass
		r.Detail = fmt.Sprintf("%d rows copied ahead of a move's cutover (bucket owned later); excluded by the ownership filter as intended", copies)
	default:
		r.Status = Pass
	}
	return r
}

// ownsLater reports whether shard owns bucket b at some cutover after t.
func ownsLater(reg *registry.Registry, shard string, b int, t time.Time) bool {
	for _, m := range reg.Moves {
		if m.Cutover.After(t) && reg.Owns(shard, b, m.Cutover) {
			return true
		}
	}
	return false
}

func unownedNow(ctx context.Context, src *Source, table string) Result {
	r := Result{Check: CheckUnownedNow, Shard: src.Shard, Table: table}
	m, err := src.UnownedNow(ctx, table)
	if err != nil {
		r.Status, r.Detail = Fail, err.Error()
		return r
	}
	var n int64
	var bs []int
	for b, c := range m {
		n += c
		bs = append(bs, b)
	}
	r.SourceCount = i64(n)
	r.Status = Pass
	if n > 0 {
		r.Status = Warn
		r.Detail = fmt.Sprintf("%d rows in buckets %s that shard %s no longer (or never) owns; expected until a move's cleanup deletes them (full table scan)",
			n, registry.FormatRanges(registry.Ranges(bs)), src.Shard)
	}
	return r
}

func scanWarehousePCI(ctx context.Context, w *Warehouse) []Result {
	cols, err := w.StringColumns(ctx)
	if err != nil {
		return []Result{{Check: CheckPCIWarehouse, Status: Fail, Detail: err.Error()}}
	}
	var out []Result
	tables := make([]string, 0, len(cols))
	for t := range cols {
		tables = append(tables, t)
	}
	sort.Strings(tables)
	for _, t := range tables {
		r := Result{Check: CheckPCIWarehouse, Table: t, Status: Pass}
		var leaks []string
		var total int64
		for _, c := range cols[t] {
			hits, rows, err := w.ScanPCI(ctx, t, c)
			if err != nil {
				r.Status, r.Detail = Fail, err.Error()
				break
			}
			if hits > 0 {
				total += hits
				leaks = append(leaks, fmt.Sprintf("column %s: %d card numbers in %d rows", c, hits, rows))
			}
		}
		r.WarehouseCount = i64(total)
		if len(leaks) > 0 {
			r.Status = Fail
			r.Detail = fmt.Sprintf("Luhn-valid card numbers in raw.%s: %s", t, strings.Join(leaks, "; "))
		} else if r.Detail == "" {
			r.Detail = fmt.Sprintf("%d string columns scanned", len(cols[t]))
		}
		out = append(out, r)
	}
	return out
}

// freshness compares, per shard, the warehouse's newest watermark with the source's
// (when the shard is reachable) or with now.
func freshness(ctx context.Context, c Config, table string, now time.Time) []Result {
	fs, err := c.Warehouse.Freshness(ctx, table)
	if err != nil {
		return []Result{{Check: CheckFreshness, Table: table, Status: Fail, Detail: err.Error()}}
	}
	batchSLA := c.FreshnessSLA
	if batchSLA <= 0 {
		batchSLA = 2*c.Registry.Extract.Window.Duration + c.Registry.Extract.SafetyLag.Duration
	}
	var out []Result
	for _, f := range fs {
		sla := batchSLA
		if f.Source == "cdc" {
			sla = c.Registry.SLA.CDCFreshness.Duration
		}
		ref, refName := now, "now"
		if sc, ok := c.Sources[f.Shard]; ok && sc.Err == nil {
			src := &Source{Registry: c.Registry, Shard: f.Shard, Conn: sc.Conn}
			if m, err := src.MaxWatermark(ctx, table); err == nil && !m.IsZero() {
				ref, refName = m, "the source's newest watermark"
			}
		}
		lag := ref.Sub(f.MaxWatermark)
		if lag < 0 {
			lag = 0
		}
		r := Result{Check: CheckFreshness, Shard: f.Shard, Table: table, Status: Pass,
			Detail: fmt.Sprintf("%s: newest warehouse watermark %s, %s behind %s (SLA %s); last load %s",
				f.Source, f.MaxWatermark.UTC().Format(time.RFC3339), lag.Round(time.Second), refName, sla, f.MaxLoadedAt.UTC().Format(time.RFC3339))}
		if lag > sla {
			r.Status = Fail
		}
		out = append(out, r)
	}
	return out
}

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

	CrossShard bool // duplicate keys, batch duplicates, PCI scan of the warehouse, freshness
	// FullScan also counts rows of buckets a shard does not own now, and makes the
	// warehouse PCI scan and duplicate checks read every row rather than the files
	// loaded since they last found them clean (sequential scans; a weekly run, or on
	// demand).
	FullScan bool
	Files    Files // when set, also scan every landed Parquet file for PANs
	// FreshnessSLA overrides the batch freshness SLA (default 2 × extract.window + safety_lag).
	FreshnessSLA time.Duration
	// Paused are the shards an operator paused (internal/pause), with why: they are not
	// among Sources, and their freshness is reported WARN, not judged (their windows
	// wait for the resume).
	Paused map[string]string
	Logger *slog.Logger
	Now    func() time.Time
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
			add(schemaCheck(ctx, src, table))
			for _, w := range c.Windows {
				if c.Warehouse != nil {
					add(Completeness(ctx, src, c.Warehouse, table, w))
				}
				if c.CrossShard {
					add(unownedRows(ctx, c, src, table, w))
				}
			}
			if c.FullScan {
				add(unownedNow(ctx, src, table))
			}
		}
	}

	if c.CrossShard && len(c.Windows) > 0 {
		// the moves whose cutover falls in the checked windows (the hourly DAG audits
		// each move in the run of its window)
		from, to := c.Windows[0].Start, c.Windows[0].End
		for _, w := range c.Windows {
			from, to = minT(from, w.Start), maxT(to, w.End)
		}
		for _, m := range MovesIn(c.Registry, from, to) {
			conn := func(id string) SourceConn {
				if sc, ok := c.Sources[id]; ok {
					return sc
				}
				return SourceConn{Err: fmt.Errorf("shard %s is not among the shards checked", id)}
			}
			for _, r := range MoveAudit(ctx, c.Registry, m, conn(m.From), conn(m.To), c.Warehouse) {
				add(r)
			}
		}
	}

	if c.CrossShard && c.Warehouse != nil {
		for _, table := range tables {
			for _, r := range duplicateChecks(ctx, c.Warehouse, table, c.FullScan, c.RunID, now()) {
				add(r)
			}
		}
		for _, r := range scanWarehousePCI(ctx, c.Warehouse, c.FullScan, c.RunID, now()) {
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
// instant (indexed: the watermark range) and explains each, or fails: the ownership
// filter leaves it out of analytics, so it must be held, owned, somewhere else.
//
//   - A row on a move's target before the target's marker is a copy: the move's source
//     must hold the key at the same or a newer version (decisions/0017), or, after the
//     move's cleanup, must have landed it (the warehouse). A "copy" the source does not
//     explain is a change lost to the ownership filter (a marker too
//     late, a clock that ran slow under a hand-recorded cutover): FAIL.
//   - A row on a move's source at or after its marker was written past the fence: FAIL.
//   - Any other row was written to a shard that did not own its bucket: FAIL.
func unownedRows(ctx context.Context, c Config, src *Source, table string, w window.Window) Result {
	reg := c.Registry
	r := Result{Check: CheckUnownedRows, Shard: src.Shard, Table: table, Window: &w}
	rows, err := src.Unowned(ctx, table, w)
	if err != nil {
		r.Status, r.Detail = Fail, err.Error()
		return r
	}
	r.SourceCount = i64(int64(len(rows)))
	if len(rows) > MaxUnowned {
		r.Status, r.Detail = Fail, fmt.Sprintf("more than %d rows of shard %s in this window are not its own: checked none of them one by one", MaxUnowned, src.Shard)
		return r
	}
	// copies to explain, by the move's source
	copies := map[string][]UnownedRow{}
	var late, misrouted []string
	for _, x := range rows {
		m, role := moveOf(reg, src.Shard, x.Bucket, x.At)
		switch role {
		case registry.RoleTo:
			copies[m.From] = append(copies[m.From], x)
		case registry.RoleFrom:
			late = append(late, fmt.Sprintf("%s v%d bucket %d at %s (move %d's marker %s)", x.Key, x.Version, x.Bucket, x.At.Format(time.RFC3339Nano), m.Epoch, m.SourceEnd().Format(time.RFC3339Nano)))
		default:
			owner, _ := reg.OwnerAt(x.Bucket, x.At)
			misrouted = append(misrouted, fmt.Sprintf("%s bucket %d (owner then: %s)", x.Key, x.Bucket, owner))
		}
	}
	var lost []string
	explained := 0
	for from, xs := range copies {
		sc, ok := c.Sources[from]
		if !ok || sc.Err != nil {
			for _, x := range xs {
				lost = append(lost, fmt.Sprintf("%s v%d (source %s not reachable to explain it)", x.Key, x.Version, from))
			}
			continue
		}
		keys := make([]string, len(xs))
		for i, x := range xs {
			keys[i] = x.Key
		}
		cur, err := (&Source{Registry: reg, Shard: from, Conn: sc.Conn}).CurrentVersions(ctx, table, keys)
		if err != nil {
			r.Status, r.Detail = Fail, err.Error()
			return r
		}
		// after the move's cleanup the source holds nothing: what it landed does
		var missing []string
		for _, x := range xs {
			if v, ok := cur[x.Key]; !ok || v.Version < x.Version {
				missing = append(missing, x.Key)
			}
		}
		landed := map[string]int64{}
		if len(missing) > 0 && c.Warehouse != nil {
			if landed, err = c.Warehouse.LandedVersions(ctx, table, from, missing); err != nil {
				r.Status, r.Detail = Fail, err.Error()
				return r
			}
		}
		for _, x := range xs {
			if v, ok := cur[x.Key]; ok && v.Version >= x.Version {
				explained++
				continue
			}
			if v, ok := landed[x.Key]; ok && v >= x.Version {
				explained++
				continue
			}
			lost = append(lost, fmt.Sprintf("%s v%d bucket %d at %s (%s holds %s)", x.Key, x.Version, x.Bucket, x.At.Format(time.RFC3339Nano), from, describeCurrent(cur, x.Key)))
		}
	}
	var problems []string
	report := func(what string, xs []string) {
		if len(xs) > 0 {
			sort.Strings(xs)
			problems = append(problems, fmt.Sprintf("%d %s: %s", len(xs), what, strings.Join(first(xs), "; ")))
		}
	}
	report("rows before a move's target marker that the source does not hold (the ownership filter drops them and nothing else has them)", lost)
	report("rows written after a move's source marker", late)
	report("rows written to a shard that did not own their bucket at their instant", misrouted)
	switch {
	case len(problems) > 0:
		r.Status = Fail
		r.Detail = fmt.Sprintf("shard %s: ", src.Shard) + strings.Join(problems, "; ")
	case explained > 0:
		r.Status = Pass
		r.Detail = fmt.Sprintf("%d rows are a move's copies, each held by its source at the same or a newer version; excluded by the ownership filter as intended", explained)
	default:
		r.Status = Pass
	}
	return r
}

func describeCurrent(cur map[string]Current, key string) string {
	if v, ok := cur[key]; ok {
		return fmt.Sprintf("v%d", v.Version)
	}
	return "no such key (cleaned up, or never copied)"
}

// moveOf returns the move that explains shard not owning bucket b at t: one whose
// target the shard is and that the shard received b by after t (a copy), or whose
// source it is and that took b away at or before t.
func moveOf(reg *registry.Registry, shard string, b int, t time.Time) (registry.Move, registry.FenceRole) {
	for _, m := range reg.Moves {
		if !m.Contains(b) {
			continue
		}
		switch {
		case m.To == shard && (m.Pending() || t.Before(m.TargetBegin())):
			return m, registry.RoleTo
		case m.From == shard && !m.Pending() && !t.Before(m.SourceEnd()):
			return m, registry.RoleFrom
		}
	}
	return registry.Move{}, ""
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

// scanWarehousePCI scans the string columns of every raw table for card numbers: the
// rows of the files loaded since the scan last found them clean (its ledger, by file
// identity), or with full every row. A table with a leak fails and its files stay
// unrecorded, so every run reports the leak until the rows are purged.
func scanWarehousePCI(ctx context.Context, w *Warehouse, full bool, runID string, now time.Time) []Result {
	cols, err := w.StringColumns(ctx)
	if err == nil {
		err = w.EnsureResults(ctx)
	}
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
		// listed before the scan: what a clean scan records (with full too, which reads
		// every row), so a file committed during the scan is never recorded unread
		files, err := w.FilesToCheck(ctx, PCIScanned, t)
		if err != nil {
			r.Status, r.Detail = Fail, err.Error()
			out = append(out, r)
			continue
		}
		if !full && len(files) == 0 {
			r.Detail = "no file loaded since the last clean scan"
			out = append(out, r)
			continue
		}
		var keys []string // nil with full: every row
		if !full {
			for _, f := range files {
				keys = append(keys, f.Key)
			}
		}
		var leaks []string
		var total int64
		for _, c := range cols[t] {
			hits, rows, err := w.ScanPCI(ctx, t, c, keys)
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
			scope := fmt.Sprintf("the rows of %d files loaded since the last clean scan", len(files))
			if full {
				scope = "every row (full scan)"
			}
			r.Detail = fmt.Sprintf("%d string columns scanned, %s", len(cols[t]), scope)
			if err := w.RecordChecked(ctx, PCIScanned, runID, now, files); err != nil {
				r.Status, r.Detail = Fail, err.Error()
			}
		}
		out = append(out, r)
	}
	return out
}

// duplicateChecks runs duplicate_keys and batch_duplicates on table over the keys of the
// files loaded since they last passed (ledger DuplicatesChecked), or over every key with
// full or when the ownership history differs from the one they last passed under (a
// duplicate latest version depends on it). Both passing records the files and the
// ownership; a failure records nothing, so it fails again until repaired.
func duplicateChecks(ctx context.Context, w *Warehouse, table string, full bool, runID string, now time.Time) []Result {
	fail := func(err error) []Result {
		return []Result{{Check: CheckDuplicateKeys, Table: table, Status: Fail, Detail: err.Error()},
			{Check: CheckBatchDupes, Table: table, Status: Fail, Detail: err.Error()}}
	}
	if err := w.EnsureResults(ctx); err != nil {
		return fail(err)
	}
	// listed before the checks, so a file committed during them is never recorded unread
	files, err := w.FilesToCheck(ctx, DuplicatesChecked, table)
	if err != nil {
		return fail(err)
	}
	own := w.OwnershipVersion(table)
	same, err := w.Holds(ctx, DuplicatesChecked, own)
	if err != nil {
		return fail(err)
	}
	scope := fmt.Sprintf("the keys of %d files loaded since the last pass", len(files))
	var keys []string // nil: every key
	switch {
	case full:
		scope = "every key (full scan)"
	case !same:
		scope = "every key (the ownership history changed since the last pass)"
	case len(files) == 0:
		scope = "no file loaded since the last pass"
		return []Result{{Check: CheckDuplicateKeys, Table: table, Status: Pass, Detail: scope, WarehouseCount: i64(0)},
			{Check: CheckBatchDupes, Table: table, Status: Pass, Detail: scope, WarehouseCount: i64(0)}}
	default:
		keys = make([]string, 0, len(files))
		for _, f := range files {
			keys = append(keys, f.Key)
		}
	}
	dup := countCheck(CheckDuplicateKeys, table, "global keys whose latest owned version comes from more than one shard",
		func() (int64, []string, error) { return w.DuplicateLatest(ctx, table, keys) })
	batch := countCheck(CheckBatchDupes, table, "(key, version) pairs loaded more than once from one shard's batch files",
		func() (int64, []string, error) { return w.BatchDuplicates(ctx, table, keys) })
	if dup.Status == Pass && batch.Status == Pass {
		dup.Detail, batch.Detail = scope, scope
		if err := w.RecordChecked(ctx, DuplicatesChecked, runID, now, append(files, own), own.Key); err != nil {
			dup.Status, dup.Detail = Fail, err.Error()
		}
	}
	return []Result{dup, batch}
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
		if why, ok := c.Paused[f.Shard]; ok {
			out = append(out, Result{Check: CheckFreshness, Shard: f.Shard, Table: table, Status: Warn,
				Detail: fmt.Sprintf("%s: not judged, the shard is paused (%s); newest warehouse watermark %s", f.Source, why, f.MaxWatermark.UTC().Format(time.RFC3339))})
			continue
		}
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

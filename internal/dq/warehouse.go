package dq

import (
	"context"
	"crypto/sha256"
	"database/sql"
	"encoding/hex"
	"fmt"
	"strings"
	"time"

	"github.com/shopsphere/shardflow/internal/landing"
	"github.com/shopsphere/shardflow/internal/registry"
	"github.com/shopsphere/shardflow/internal/warehouse"
	"github.com/shopsphere/shardflow/internal/window"
)

// Warehouse runs dq's queries on the warehouse's raw tables (docs/contracts.md §6)
// over database/sql, in DuckDB or Snowflake SQL. It only reads raw tables; it writes
// only the results table.
type Warehouse struct {
	DB       *sql.DB
	Dialect  landing.Dialect
	Raw      string // schema of the raw tables, "raw"
	Results  string // qualified name of the results table, "dq.dq_results"
	Registry *registry.Registry
	// Checker answers the window checksum, batch duplicates and string columns with the
	// warehouse backend's own queries (the ones its contract test covers); dq's SQL
	// answers the rest. Required.
	Checker warehouse.Checker
}

var _ WindowSide = (*Warehouse)(nil)

func (w *Warehouse) table(name string) string { return w.Raw + "." + name }

// ts renders an instant as a timestamp-with-time-zone literal of the dialect.
func (w *Warehouse) ts(t time.Time) string {
	s := t.UTC().Format("2006-01-02 15:04:05.000000")
	if w.Dialect == landing.Snowflake {
		return "'" + s + " +00:00'::TIMESTAMP_TZ"
	}
	return "TIMESTAMPTZ '" + s + "+00'"
}

func (w *Warehouse) keyText(t registry.Table, alias ...string) string {
	pre := ""
	if len(alias) > 0 {
		pre = alias[0] + "."
	}
	parts := make([]string, len(t.PrimaryKey))
	for i, k := range t.PrimaryKey {
		parts[i] = "CAST(" + pre + k + " AS VARCHAR)"
	}
	return strings.Join(parts, " || '|' || ")
}

func (w *Warehouse) windowWhere(t registry.Table, shard string, win window.Window) string {
	return fmt.Sprintf("_source = 'batch' AND _shard = '%s' AND %s >= %s AND %s < %s",
		strings.ReplaceAll(shard, "'", "''"), t.Watermark, w.ts(win.Start), t.Watermark, w.ts(win.End))
}

// WindowChecksum implements WindowSide: the batch rows of shard whose watermark is in win.
func (w *Warehouse) WindowChecksum(ctx context.Context, table, shard string, win window.Window) (int64, string, error) {
	t, ok := w.Registry.Table(table)
	if !ok {
		return 0, "", fmt.Errorf("table %s is not in shards.yaml", table)
	}
	n, sum, err := w.Checker.WindowChecksum(ctx, t, shard, win)
	if err != nil {
		return 0, "", fmt.Errorf("warehouse checksum of shard %s table %s window %s: %w", shard, table, win, err)
	}
	return n, sum, nil
}

// WindowPairs implements WindowSide.
func (w *Warehouse) WindowPairs(ctx context.Context, table, shard string, win window.Window) ([]Pair, error) {
	t, ok := w.Registry.Table(table)
	if !ok {
		return nil, fmt.Errorf("table %s is not in shards.yaml", table)
	}
	q := fmt.Sprintf("SELECT %s AS k, %s FROM %s WHERE %s ORDER BY 1, 2", w.keyText(t), t.Version, w.table(table), w.windowWhere(t, shard, win))
	rows, err := w.DB.QueryContext(ctx, q)
	if err != nil {
		return nil, fmt.Errorf("warehouse pairs of shard %s table %s window %s: %w", shard, table, win, err)
	}
	defer rows.Close()
	var out []Pair
	for rows.Next() {
		var p Pair
		if err := rows.Scan(&p.Key, &p.Version); err != nil {
			return nil, err
		}
		out = append(out, p)
	}
	return out, rows.Err()
}

// ownership renders the whole ownership history as a VALUES list (shard, lo, hi, from, to).
func (w *Warehouse) ownership() string {
	var rows []string
	for _, iv := range w.Registry.Intervals() {
		from, to := time.Date(1970, 1, 1, 0, 0, 0, 0, time.UTC), time.Date(9999, 12, 31, 0, 0, 0, 0, time.UTC)
		if !iv.From.IsZero() {
			from = iv.From
		}
		if !iv.To.IsZero() {
			to = iv.To
		}
		rows = append(rows, fmt.Sprintf("('%s', %d, %d, %s, %s)", iv.Shard, iv.Lo, iv.Hi, w.ts(from), w.ts(to)))
	}
	return "(VALUES " + strings.Join(rows, ", ") + ") AS own(shard, lo, hi, vfrom, vto)"
}

// DuplicateLatest finds global keys whose latest owned version comes from more than one
// shard. The ownership filter keeps a row only if its shard owned its bucket at the
// row's instant (the watermark; the commit time for a CDC delete), so a key can have one
// owner per instant and this should always be empty. With files, only the keys with a
// row in those data keys are checked (nil: every key): a duplicate needs both versions
// loaded, so it shows when the later of them is, as long as the ownership is unchanged.
func (w *Warehouse) DuplicateLatest(ctx context.Context, table string, files []string) (int64, []string, error) {
	t, ok := w.Registry.Table(table)
	if !ok {
		return 0, nil, fmt.Errorf("table %s is not in shards.yaml", table)
	}
	inst := fmt.Sprintf("CASE WHEN r._op = 'd' THEN r._commit_ts ELSE r.%s END", t.Watermark)
	rows := "SELECT * FROM " + w.table(table) // the rows judged: every row, or the files' keys'
	if files != nil {
		// joined with the distinct keys of those files (a hash join: no text built for
		// the rows of other keys), before the range join with the ownership, which DuckDB
		// would otherwise run first, over every row
		pk := strings.Join(t.PrimaryKey, ", ")
		rows = fmt.Sprintf("SELECT r.* FROM %s r JOIN (SELECT DISTINCT %s FROM %s WHERE %s) ch USING (%s)",
			w.table(table), pk, w.table(table), inAny(warehouse.ColFile, files), pk)
	}
	materialized := "" // Snowflake has no MATERIALIZED; it prunes by the join itself
	if files != nil && w.Dialect == landing.DuckDB {
		materialized = "MATERIALIZED "
	}
	q := fmt.Sprintf(`WITH judged AS %s(%s),
	owned AS (
		SELECT %s AS k, r.%s AS v, r._shard AS shard FROM judged r JOIN %s
		  ON r._shard = own.shard AND r.bucket BETWEEN own.lo AND own.hi AND %s >= own.vfrom AND %s < own.vto),
	latest AS (SELECT k, max(v) AS v FROM owned GROUP BY k),
	dup AS (SELECT o.k FROM owned o JOIN latest l ON o.k = l.k AND o.v = l.v GROUP BY o.k HAVING count(DISTINCT o.shard) > 1)
	SELECT (SELECT count(*) FROM dup), k FROM dup ORDER BY k LIMIT %d`,
		materialized, rows, w.keyText(t, "r"), t.Version, w.ownership(), inst, inst, MaxKeysInDetail)
	return warehouse.QueryDuplicateKeys(ctx, w.DB, q)
}

// BatchDuplicates finds (key, version) pairs loaded more than once from one shard's batch
// files: windows do not overlap and a re-extracted file replaces its rows, so any is an
// exactly-once violation. With files, only the pairs with a row in those data keys are
// checked (nil: every pair): a pair loaded twice shows when its second file is loaded.
func (w *Warehouse) BatchDuplicates(ctx context.Context, table string, files []string) (int64, []string, error) {
	t, ok := w.Registry.Table(table)
	if !ok {
		return 0, nil, fmt.Errorf("table %s is not in shards.yaml", table)
	}
	if files == nil {
		return w.Checker.DuplicateKeys(ctx, t, MaxKeysInDetail)
	}
	return warehouse.QueryDuplicateKeys(ctx, w.DB, warehouse.DuplicateKeysAmongSQL(w.table(table), t, inAny(warehouse.ColFile, files), MaxKeysInDetail))
}

// StringColumns lists the string columns of every raw table.
func (w *Warehouse) StringColumns(ctx context.Context) (map[string][]string, error) {
	return w.Checker.StringColumns(ctx)
}

// ScanPCI counts card-number-like values (CountPANs) in one string column: the
// warehouse preselects values with at least 13 digits; Go applies the exact rule.
// With files, only the rows loaded from those data keys are read (nil: every row). It
// returns the number of hits and of rows holding one. No value leaves this function.
func (w *Warehouse) ScanPCI(ctx context.Context, table, column string, files []string) (hits, rowsHit int64, err error) {
	strip := fmt.Sprintf("regexp_replace(%s, '[^0-9]', '', 'g')", column)
	if w.Dialect == landing.Snowflake {
		strip = fmt.Sprintf("REGEXP_REPLACE(%s, '[^0-9]', '')", column)
	}
	where := fmt.Sprintf("length(%s) >= 13", strip)
	if files != nil {
		// the files first: DuckDB evaluates the regexp on every row of the table before
		// an IN filter beside it, unless the regexp is guarded by the same filter
		in := inAny(warehouse.ColFile, files)
		where = fmt.Sprintf("%s AND CASE WHEN %s THEN %s END", in, in, where)
	}
	rows, err := w.DB.QueryContext(ctx, fmt.Sprintf("SELECT %s FROM %s WHERE %s", column, w.table(table), where))
	if err != nil {
		return 0, 0, fmt.Errorf("pci scan of %s.%s: %w", table, column, err)
	}
	defer rows.Close()
	for rows.Next() {
		var s string
		if err := rows.Scan(&s); err != nil {
			return 0, 0, fmt.Errorf("pci scan of %s.%s: %w", table, column, err)
		}
		if n := CountPANs(s); n > 0 {
			hits += int64(n)
			rowsHit++
		}
	}
	return hits, rowsHit, rows.Err()
}

// literalLists quotes values as SQL string literals, joined into lists of at most
// lookupChunk for IN (…).
func literalLists(values []string) []string {
	var out []string
	for len(values) > 0 {
		n := min(len(values), lookupChunk)
		lits := make([]string, n)
		for i, v := range values[:n] {
			lits[i] = "'" + strings.ReplaceAll(v, "'", "''") + "'"
		}
		values = values[n:]
		out = append(out, strings.Join(lits, ", "))
	}
	return out
}

// FileVersion is one loaded file as the load history names it.
type FileVersion struct{ Key, SHA256 string }

// A Ledger is one of dq's ledgers of checked file versions (key and data sha256), beside
// the results: what an incremental check has read and found clean, so the next run reads
// only what was loaded since, by identity (a replaced file is a new version; a load that
// committed late is read whatever its _loaded_at).
type Ledger string

const (
	PCIScanned        Ledger = "dq_pci_scanned"        // the warehouse PCI scan
	DuplicatesChecked Ledger = "dq_duplicates_checked" // duplicate_keys and batch_duplicates
)

func (w *Warehouse) ledger(l Ledger) string {
	return w.Results[:max(strings.LastIndex(w.Results, "."), 0)] + "." + string(l)
}

// FilesToCheck lists table's loaded files (raw._load_history) that ledger l does not
// hold.
func (w *Warehouse) FilesToCheck(ctx context.Context, l Ledger, table string) ([]FileVersion, error) {
	q := fmt.Sprintf(`SELECT h.file_key, h.data_sha256 FROM %s h WHERE h.table_name = '%s'
		AND NOT EXISTS (SELECT 1 FROM %s s WHERE s.file_key = h.file_key AND s.data_sha256 = h.data_sha256) ORDER BY 1`,
		w.table(warehouse.HistoryTable), strings.ReplaceAll(table, "'", "''"), w.ledger(l))
	rows, err := w.DB.QueryContext(ctx, q)
	if err != nil {
		return nil, fmt.Errorf("files of %s to check (%s): %w", table, l, err)
	}
	defer rows.Close()
	var out []FileVersion
	for rows.Next() {
		var f FileVersion
		if err := rows.Scan(&f.Key, &f.SHA256); err != nil {
			return nil, err
		}
		out = append(out, f)
	}
	return out, rows.Err()
}

// RecordChecked adds files found clean to ledger l, in one transaction. Entries whose key
// is given in replace are deleted first (an entry that stands for something other than
// a file, e.g. the ownership a check ran under).
func (w *Warehouse) RecordChecked(ctx context.Context, l Ledger, runID string, at time.Time, files []FileVersion, replace ...string) error {
	tx, err := w.DB.BeginTx(ctx, nil)
	if err != nil {
		return fmt.Errorf("record %s: %w", l, err)
	}
	defer func() { _ = tx.Rollback() }()
	for _, key := range replace {
		if _, err := tx.ExecContext(ctx, fmt.Sprintf("DELETE FROM %s WHERE file_key = ?", w.ledger(l)), key); err != nil {
			return fmt.Errorf("record %s: %w", l, err)
		}
	}
	for _, f := range files {
		if _, err := tx.ExecContext(ctx, fmt.Sprintf("INSERT INTO %s VALUES (?, ?, ?, %s)", w.ledger(l), w.ts(at)), f.Key, f.SHA256, runID); err != nil {
			return fmt.Errorf("record %s: %w", l, err)
		}
	}
	if err := tx.Commit(); err != nil {
		return fmt.Errorf("record %s: %w", l, err)
	}
	return nil
}

// Holds reports whether ledger l holds exactly this version.
func (w *Warehouse) Holds(ctx context.Context, l Ledger, f FileVersion) (bool, error) {
	var n int64
	err := w.DB.QueryRowContext(ctx, fmt.Sprintf("SELECT count(*) FROM %s WHERE file_key = ? AND data_sha256 = ?", w.ledger(l)), f.Key, f.SHA256).Scan(&n)
	if err != nil {
		return false, fmt.Errorf("read %s: %w", l, err)
	}
	return n > 0, nil
}

// OwnershipVersion stands for the ownership history a duplicate check of table ran
// under, as a ledger entry: a check of the new loads only is exact while it is unchanged.
func (w *Warehouse) OwnershipVersion(table string) FileVersion {
	sum := sha256.Sum256([]byte(w.ownership()))
	return FileVersion{Key: "ownership:" + table, SHA256: hex.EncodeToString(sum[:])}
}

// inAny is col IN (…) over values, one IN list per lookupChunk values, OR-ed: one
// predicate for any number of values.
func inAny(col string, values []string) string {
	if len(values) == 0 {
		return "1 = 0"
	}
	lists := literalLists(values)
	for i, l := range lists {
		lists[i] = col + " IN (" + l + ")"
	}
	return "(" + strings.Join(lists, " OR ") + ")"
}

// Fresh is the newest data of one shard in one raw table.
type Fresh struct {
	Shard, Source string
	MaxWatermark  time.Time
	MaxLoadedAt   time.Time
}

// Freshness returns, per shard and source, the newest watermark and load time.
func (w *Warehouse) Freshness(ctx context.Context, table string) ([]Fresh, error) {
	t, ok := w.Registry.Table(table)
	if !ok {
		return nil, fmt.Errorf("table %s is not in shards.yaml", table)
	}
	q := fmt.Sprintf("SELECT _shard, _source, max(%s), max(_loaded_at) FROM %s GROUP BY 1, 2 ORDER BY 1, 2", t.Watermark, w.table(table))
	rows, err := w.DB.QueryContext(ctx, q)
	if err != nil {
		return nil, fmt.Errorf("freshness of %s: %w", table, err)
	}
	defer rows.Close()
	var out []Fresh
	for rows.Next() {
		var f Fresh
		if err := rows.Scan(&f.Shard, &f.Source, &f.MaxWatermark, &f.MaxLoadedAt); err != nil {
			return nil, fmt.Errorf("freshness of %s: %w", table, err)
		}
		out = append(out, f)
	}
	return out, rows.Err()
}

// EnsureResults creates the results table, and the ledgers beside it, if they do not
// exist.
func (w *Warehouse) EnsureResults(ctx context.Context) error {
	// the schema is the name without its last part: "dq" of dq.dq_results, "DB.DQ" of
	// DB.DQ.DQ_RESULTS (Snowflake, qualified by the database)
	schema := w.Results[:max(strings.LastIndex(w.Results, "."), 0)]
	tsType := "TIMESTAMPTZ"
	if w.Dialect == landing.Snowflake {
		tsType = "TIMESTAMP_TZ"
	}
	stmts := []string{
		"CREATE SCHEMA IF NOT EXISTS " + schema,
		fmt.Sprintf(`CREATE TABLE IF NOT EXISTS %s (
			run_id VARCHAR NOT NULL, check_name VARCHAR NOT NULL, shard VARCHAR, table_name VARCHAR,
			window_start %s, window_end %s, status VARCHAR NOT NULL,
			source_count BIGINT, warehouse_count BIGINT, source_checksum VARCHAR, warehouse_checksum VARCHAR,
			detail VARCHAR, checked_at %s NOT NULL)`, w.Results, tsType, tsType, tsType),
	}
	for _, l := range []Ledger{PCIScanned, DuplicatesChecked} {
		stmts = append(stmts, fmt.Sprintf(`CREATE TABLE IF NOT EXISTS %s (
			file_key VARCHAR NOT NULL, data_sha256 VARCHAR NOT NULL, run_id VARCHAR NOT NULL, checked_at %s NOT NULL)`, w.ledger(l), tsType))
	}
	for _, s := range stmts {
		if _, err := w.DB.ExecContext(ctx, s); err != nil {
			return fmt.Errorf("create %s: %w", w.Results, err)
		}
	}
	return nil
}

// WriteResults appends the results of one run in one transaction.
func (w *Warehouse) WriteResults(ctx context.Context, rs []Result) error {
	if err := w.EnsureResults(ctx); err != nil {
		return err
	}
	tx, err := w.DB.BeginTx(ctx, nil)
	if err != nil {
		return fmt.Errorf("write %s: %w", w.Results, err)
	}
	defer func() { _ = tx.Rollback() }()
	for _, r := range rs {
		ws, we := "NULL", "NULL"
		if r.Window != nil {
			ws, we = w.ts(r.Window.Start), w.ts(r.Window.End)
		}
		q := fmt.Sprintf("INSERT INTO %s VALUES (?, ?, ?, ?, %s, %s, ?, ?, ?, ?, ?, ?, %s)", w.Results, ws, we, w.ts(r.CheckedAt))
		if _, err := tx.ExecContext(ctx, q, r.RunID, r.Check, nullStr(r.Shard), nullStr(r.Table), string(r.Status),
			nullInt(r.SourceCount), nullInt(r.WarehouseCount), nullStr(r.SourceChecksum), nullStr(r.WarehouseChecksum), nullStr(r.Detail)); err != nil {
			return fmt.Errorf("write %s: %w", w.Results, err)
		}
	}
	if err := tx.Commit(); err != nil {
		return fmt.Errorf("write %s: %w", w.Results, err)
	}
	return nil
}

func nullStr(s string) any {
	if s == "" {
		return nil
	}
	return s
}

func nullInt(n *int64) any {
	if n == nil {
		return nil
	}
	return *n
}

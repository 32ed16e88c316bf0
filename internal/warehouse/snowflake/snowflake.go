// Package snowflake is the production warehouse: raw tables in Snowflake, loaded with
// COPY INTO from an external stage over the landing bucket (files are never downloaded
// by the loader to be loaded), through gosnowflake.
//
// Locking: LoadFile's transaction starts with the DELETE of the key's rows. Snowflake's
// DELETE, UPDATE and MERGE on one table wait for each other's transactions, so loads into
// the same table serialize there; the history is read after that DELETE, so a second
// load of a file that the first just committed sees it and skips.
package snowflake

import (
	"context"
	"database/sql"
	"database/sql/driver"
	"errors"
	"fmt"
	"strings"
	"time"

	_ "github.com/snowflakedb/gosnowflake" // registers the "snowflake" driver

	"github.com/shopsphere/shardflow/internal/landing"
	"github.com/shopsphere/shardflow/internal/registry"
	"github.com/shopsphere/shardflow/internal/warehouse"
	"github.com/shopsphere/shardflow/internal/window"
)

var (
	_ warehouse.Warehouse   = (*Warehouse)(nil)
	_ warehouse.Checker     = (*Warehouse)(nil)
	_ warehouse.StageReader = (*Warehouse)(nil)
)

// Load steps at which Failpoint is called inside the load transaction.
const (
	StepDeleted  = "deleted"
	StepCopied   = "copied"
	StepVerified = "verified"
	StepHistory  = "history"
)

// Warehouse is a Snowflake schema of raw tables.
type Warehouse struct {
	db  *sql.DB
	cfg Config

	// Failpoint, when set (tests only), is called at each Step* inside the load
	// transaction; an error aborts the load there, as a crash would.
	Failpoint func(step string) error
}

// Open connects with a gosnowflake DSN and checks the connection.
func Open(ctx context.Context, dsn string, cfg Config) (*Warehouse, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	db, err := sql.Open("snowflake", dsn)
	if err != nil {
		return nil, fmt.Errorf("open snowflake warehouse: %w", err)
	}
	if err := db.PingContext(ctx); err != nil {
		db.Close()
		return nil, fmt.Errorf("open snowflake warehouse: %w", err)
	}
	return &Warehouse{db: db, cfg: cfg}, nil
}

// DB is the underlying connection pool.
func (w *Warehouse) DB() *sql.DB { return w.db }

// Config is the configuration the warehouse was opened with.
func (w *Warehouse) Config() Config { return w.cfg }

// FailpointSteps lists the load steps, in order (tests).
func (w *Warehouse) FailpointSteps() []string {
	return []string{StepDeleted, StepCopied, StepVerified, StepHistory}
}

// SetFailpoint sets Failpoint (tests).
func (w *Warehouse) SetFailpoint(f func(step string) error) { w.Failpoint = f }

// Close closes the pool.
func (w *Warehouse) Close() error { return w.db.Close() }

// ReadsStage implements warehouse.StageReader: COPY reads the files from the stage.
func (w *Warehouse) ReadsStage() bool { return true }

// Ensure implements warehouse.Warehouse. The stage itself is not created here: it is
// infrastructure (storage integration, bucket policy); docs/warehouse.md has its DDL.
func (w *Warehouse) Ensure(ctx context.Context, tables []registry.Table) error {
	stmts, err := EnsureSQL(w.cfg, tables)
	if err != nil {
		return err
	}
	for _, s := range stmts {
		if _, err := w.db.ExecContext(ctx, s); err != nil {
			return fmt.Errorf("ensure raw tables: %w", err)
		}
	}
	have, err := w.columns(ctx, tables)
	if err != nil {
		return err
	}
	for _, t := range tables {
		add, err := AddColumnsSQL(w.cfg, t, have[t.Name])
		if err != nil {
			return err
		}
		for _, s := range add {
			if _, err := w.db.ExecContext(ctx, s); err != nil {
				return fmt.Errorf("ensure raw tables: add a declared column: %w", err)
			}
		}
	}
	return nil
}

// columns are the lower-case column names of the raw tables, by table.
func (w *Warehouse) columns(ctx context.Context, tables []registry.Table) (map[string]map[string]bool, error) {
	if len(tables) == 0 {
		return nil, nil
	}
	rows, err := w.db.QueryContext(ctx, ColumnsSQL(w.cfg, tables))
	if err != nil {
		return nil, fmt.Errorf("ensure raw tables: list their columns: %w", err)
	}
	defer rows.Close()
	out := map[string]map[string]bool{}
	for rows.Next() {
		var t, c string
		if err := rows.Scan(&t, &c); err != nil {
			return nil, fmt.Errorf("ensure raw tables: list their columns: %w", err)
		}
		t = strings.ToLower(t)
		if out[t] == nil {
			out[t] = map[string]bool{}
		}
		out[t][strings.ToLower(c)] = true
	}
	return out, rows.Err()
}

// LoadFile implements warehouse.Warehouse.
func (w *Warehouse) LoadFile(ctx context.Context, f warehouse.File) (res warehouse.LoadResult, err error) {
	m := f.Manifest
	defer func() {
		if err != nil {
			err = &warehouse.LoadError{Key: m.DataKey, Table: m.Table, Shard: m.Shard, Err: err}
		}
	}()
	if err := warehouse.CheckManifest(f.Table, m); err != nil {
		return res, err
	}
	l, err := LoadSQL(w.cfg, f.Table, m)
	if err != nil {
		return res, err
	}
	res, err = w.load(ctx, m, l)
	if err != nil && !errors.Is(err, warehouse.ErrMismatch) && ctx.Err() == nil {
		// A concurrent load of the same file can win (on Snowflake the loser waits on the
		// DELETE's lock and skips; an emulator without DML locks aborts the loser at
		// commit instead). If the history now holds this very sha, the file is loaded.
		if known, lerr := w.lookup(ctx, w.db, l.Lookup); lerr == nil && known == m.DataSHA256 {
			return warehouse.LoadResult{Skipped: true}, nil
		}
	}
	return res, err
}

func (w *Warehouse) load(ctx context.Context, m *landing.Manifest, l Load) (res warehouse.LoadResult, err error) {
	// cheap check first, outside any lock
	known, err := w.lookup(ctx, w.db, l.Lookup)
	if err != nil {
		return res, err
	}
	if known == m.DataSHA256 {
		return warehouse.LoadResult{Skipped: true}, nil
	}
	fail := func(step string) error {
		if w.Failpoint != nil {
			return w.Failpoint(step)
		}
		return nil
	}
	// One session for the whole transaction, with explicit BEGIN/COMMIT: database/sql's
	// Tx rolls back with the caller's context, which a cancellation has already closed,
	// and would then return the session to the pool with the transaction still open, for
	// the next load to commit. Here a failed load rolls back with a context of its own,
	// and a session whose rollback fails is discarded (Snowflake rolls back the open
	// transaction of a closed session).
	tx, err := w.db.Conn(ctx)
	if err != nil {
		return res, fmt.Errorf("connect: %w", err)
	}
	committed := false
	defer func() {
		if !committed {
			rctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 2*time.Minute)
			if _, err := tx.ExecContext(rctx, "ROLLBACK"); err != nil {
				_ = tx.Raw(func(any) error { return driver.ErrBadConn })
			}
			cancel()
		}
		tx.Close()
	}()
	if _, err := tx.ExecContext(ctx, "BEGIN"); err != nil {
		return res, fmt.Errorf("begin: %w", err)
	}
	if _, err := tx.ExecContext(ctx, l.Delete); err != nil {
		return res, fmt.Errorf("delete old rows: %w", err)
	}
	if known, err = w.lookup(ctx, tx, l.Lookup); err != nil {
		return res, err
	}
	switch known {
	case m.DataSHA256:
		return warehouse.LoadResult{Skipped: true}, nil // loaded meanwhile; the rollback restores its rows
	case "":
	default:
		res.Replaced = true
	}
	if err := fail(StepDeleted); err != nil {
		return res, err
	}
	if res.Rows, err = copyInto(ctx, tx, l.Copy, m.DataKey); err != nil {
		return res, err
	}
	if l.Stamp != "" {
		if _, err := tx.ExecContext(ctx, l.Stamp); err != nil {
			return res, fmt.Errorf("stamp copied rows: %w", err)
		}
	}
	if err := fail(StepCopied); err != nil {
		return res, err
	}
	n, s, err := w.checksum(ctx, tx, l.Verify)
	if err != nil {
		return res, fmt.Errorf("verify rows: %w", err)
	}
	if n != m.Rows || s != m.Checksum {
		return res, fmt.Errorf("%w: file has %d rows checksum %s, manifest says %d rows checksum %s", warehouse.ErrMismatch, n, s, m.Rows, m.Checksum)
	}
	if err := fail(StepVerified); err != nil {
		return res, err
	}
	if _, err := tx.ExecContext(ctx, l.HistoryDelete); err != nil {
		return res, fmt.Errorf("write load history: %w", err)
	}
	if _, err := tx.ExecContext(ctx, l.History); err != nil {
		return res, fmt.Errorf("write load history: %w", err)
	}
	if err := fail(StepHistory); err != nil {
		return res, err
	}
	if _, err := tx.ExecContext(ctx, "COMMIT"); err != nil {
		return res, fmt.Errorf("commit: %w", err)
	}
	committed = true
	return res, nil
}

type querier interface {
	QueryContext(ctx context.Context, q string, args ...any) (*sql.Rows, error)
	QueryRowContext(ctx context.Context, q string, args ...any) *sql.Row
}

func (w *Warehouse) lookup(ctx context.Context, q querier, stmt string) (string, error) {
	var sha string
	err := q.QueryRowContext(ctx, stmt).Scan(&sha)
	if errors.Is(err, sql.ErrNoRows) {
		return "", nil
	}
	if err != nil {
		return "", fmt.Errorf("read load history: %w", err)
	}
	return sha, nil
}

// copyInto runs a COPY and returns the rows it loaded from the one file it names. A
// COPY that did not see the file ("Copy executed with 0 files processed") or did not
// load it fully is an error.
func copyInto(ctx context.Context, tx querier, stmt, key string) (int64, error) {
	rows, err := tx.QueryContext(ctx, stmt)
	if err != nil {
		return 0, fmt.Errorf("copy into: %w", err)
	}
	defer rows.Close()
	cols, err := rows.Columns()
	if err != nil {
		return 0, fmt.Errorf("copy into: %w", err)
	}
	idx := map[string]int{}
	for i, c := range cols {
		idx[strings.ToLower(c)] = i
	}
	si, ok1 := idx["status"]
	ri, ok2 := idx["rows_loaded"]
	var loaded int64
	files := 0
	for rows.Next() {
		vals := make([]sql.NullString, len(cols))
		ptrs := make([]any, len(cols))
		for i := range vals {
			ptrs[i] = &vals[i]
		}
		if err := rows.Scan(ptrs...); err != nil {
			return 0, fmt.Errorf("copy into: %w", err)
		}
		if !ok1 || !ok2 {
			return 0, fmt.Errorf("copy into: stage did not return %s (%s)", key, vals[0].String)
		}
		if st := vals[si].String; st != "LOADED" {
			return 0, fmt.Errorf("copy into: %s: status %s", key, st)
		}
		var n int64
		if _, err := fmt.Sscan(vals[ri].String, &n); err != nil {
			return 0, fmt.Errorf("copy into: rows_loaded %q: %w", vals[ri].String, err)
		}
		loaded += n
		files++
	}
	if err := rows.Err(); err != nil {
		return 0, fmt.Errorf("copy into: %w", err)
	}
	if files != 1 {
		return 0, fmt.Errorf("copy into: %d files processed for %s, want 1", files, key)
	}
	return loaded, nil
}

// checksum runs a verifySQL query.
func (w *Warehouse) checksum(ctx context.Context, q querier, stmt string) (int64, string, error) {
	if !w.cfg.ClientChecksum {
		var n int64
		var s string
		err := q.QueryRowContext(ctx, stmt).Scan(&n, &s)
		return n, s, err
	}
	rows, err := q.QueryContext(ctx, stmt)
	if err != nil {
		return 0, "", err
	}
	defer rows.Close()
	var c landing.Checksum
	for rows.Next() {
		var k string
		var v int64
		if err := rows.Scan(&k, &v); err != nil {
			return 0, "", err
		}
		c.Add(k, v)
	}
	return c.Rows(), c.String(), rows.Err()
}

// History implements warehouse.Warehouse.
func (w *Warehouse) History(ctx context.Context, f warehouse.HistoryFilter) ([]warehouse.HistoryEntry, error) {
	q := `SELECT file_key, table_name, shard, source, "ROWS", checksum, data_sha256, loaded_at FROM ` + w.cfg.history() + ` WHERE 1 = 1`
	if f.Table != "" {
		q += " AND table_name = " + lit(f.Table)
	}
	if f.Shard != "" {
		q += " AND shard = " + lit(f.Shard)
	}
	if f.Key != "" {
		q += " AND file_key = " + lit(f.Key)
	}
	if len(f.Prefixes) > 0 {
		starts := make([]string, len(f.Prefixes))
		for i, p := range f.Prefixes {
			starts[i] = "STARTSWITH(file_key, " + lit(p) + ")"
		}
		q += " AND (" + strings.Join(starts, " OR ") + ")"
	}
	rows, err := w.db.QueryContext(ctx, q+" ORDER BY file_key")
	if err != nil {
		return nil, fmt.Errorf("read load history: %w", err)
	}
	defer rows.Close()
	var out []warehouse.HistoryEntry
	for rows.Next() {
		var e warehouse.HistoryEntry
		if err := rows.Scan(&e.FileKey, &e.Table, &e.Shard, &e.Source, &e.Rows, &e.Checksum, &e.DataSHA256, &e.LoadedAt); err != nil {
			return nil, fmt.Errorf("read load history: %w", err)
		}
		out = append(out, e)
	}
	return out, rows.Err()
}

// FileChecksum implements warehouse.Checker.
func (w *Warehouse) FileChecksum(ctx context.Context, t registry.Table, key string) (int64, string, error) {
	n, s, err := w.checksum(ctx, w.db, verifySQL(w.cfg, t, warehouse.ColFile+" = "+lit(key)))
	if err != nil {
		return 0, "", fmt.Errorf("checksum of file %s: %w", key, err)
	}
	return n, s, nil
}

// FileLoadedAt implements warehouse.Checker.
func (w *Warehouse) FileLoadedAt(ctx context.Context, t registry.Table, key string) (time.Time, error) {
	var at time.Time
	q := fmt.Sprintf("SELECT MAX(%s) FROM %s WHERE %s = %s", warehouse.ColLoadedAt, w.cfg.table(t.Name), warehouse.ColFile, lit(key))
	if err := w.db.QueryRowContext(ctx, q).Scan(&at); err != nil {
		return time.Time{}, fmt.Errorf("loaded_at of file %s: %w", key, err)
	}
	return at, nil
}

// WindowChecksum implements warehouse.Checker.
func (w *Warehouse) WindowChecksum(ctx context.Context, t registry.Table, shard string, win window.Window) (int64, string, error) {
	n, s, err := w.checksum(ctx, w.db, verifySQL(w.cfg, t, WindowWhere(t, shard, win)))
	if err != nil {
		return 0, "", fmt.Errorf("checksum of shard %s table %s window %s/%s: %w", shard, t.Name, win.Start.UTC().Format(time.RFC3339), win.End.UTC().Format(time.RFC3339), err)
	}
	return n, s, nil
}

// DuplicateKeys implements warehouse.Checker.
func (w *Warehouse) DuplicateKeys(ctx context.Context, t registry.Table, limit int) (int64, []string, error) {
	n, keys, err := warehouse.QueryDuplicateKeys(ctx, w.db, warehouse.DuplicateKeysSQL(w.cfg.schema(), t, limit))
	if err != nil {
		return 0, nil, fmt.Errorf("duplicate keys of table %s: %w", t.Name, err)
	}
	return n, keys, nil
}

// StringColumns implements warehouse.Checker.
func (w *Warehouse) StringColumns(ctx context.Context) (map[string][]string, error) {
	q := fmt.Sprintf(`SELECT table_name, column_name FROM %s WHERE UPPER(table_schema) = UPPER(%s)
		AND UPPER(data_type) IN ('TEXT', 'VARCHAR') AND UPPER(table_name) <> UPPER(%s) ORDER BY table_name, ordinal_position`,
		w.cfg.infoColumns(), lit(w.cfg.Schema), lit(warehouse.HistoryTable))
	rows, err := w.db.QueryContext(ctx, q)
	if err != nil {
		return nil, fmt.Errorf("list string columns: %w", err)
	}
	defer rows.Close()
	out := map[string][]string{}
	for rows.Next() {
		var t, c string
		if err := rows.Scan(&t, &c); err != nil {
			return nil, err
		}
		out[strings.ToLower(t)] = append(out[strings.ToLower(t)], strings.ToLower(c))
	}
	return out, rows.Err()
}

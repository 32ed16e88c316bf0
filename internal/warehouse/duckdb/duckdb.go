// Package duckdb is the local warehouse: an embedded DuckDB file (var/warehouse.duckdb
// for the local environment) loaded with read_parquet from a local copy of each landed
// file. DuckDB has no httpfs here; the caller copies an object out of the store first.
//
// Locking: a DuckDB file has one writing process at a time (the file lock is taken when
// the file is opened; a second process gets "Could not set lock on file", which Open
// reports wrapping warehouse.ErrConflict, retryable). Inside the process LoadFile calls
// are serialized by a mutex, and each runs in one DuckDB transaction.
package duckdb

import (
	"context"
	"database/sql"
	"database/sql/driver"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"time"

	duck "github.com/duckdb/duckdb-go/v2"

	"github.com/shopsphere/shardflow/internal/landing"
	"github.com/shopsphere/shardflow/internal/registry"
	"github.com/shopsphere/shardflow/internal/warehouse"
	"github.com/shopsphere/shardflow/internal/window"
)

var (
	_ warehouse.Warehouse = (*Warehouse)(nil)
	_ warehouse.Checker   = (*Warehouse)(nil)
)

// Schema is the schema of the raw tables (WithSchema loads into another: a restore's).
const Schema = "raw"

// Load steps, in order, at which Failpoint is called inside the load transaction.
const (
	StepDeleted  = "deleted"  // the key's old rows are deleted
	StepInserted = "inserted" // the file's rows are inserted
	StepVerified = "verified" // count and checksum match the manifest
	StepHistory  = "history"  // the history entry is written; next is COMMIT
)

// Warehouse is a DuckDB database file.
type Warehouse struct {
	db     *sql.DB
	conn   *duck.Connector
	mu     sync.Mutex
	schema string // of the raw tables and the load history
	shared bool   // a WithSchema view: Close leaves the connection to its parent

	// Failpoint, when set (tests only), is called at each Step* inside the load
	// transaction; an error aborts the load there, as a crash would.
	Failpoint func(step string) error
}

// Open opens (creating if needed) the database file at path; "" is an in-memory database.
// Every connection runs with TimeZone UTC. Its raw tables are in Schema.
func Open(ctx context.Context, path string) (*Warehouse, error) {
	if path != "" {
		if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
			return nil, fmt.Errorf("open warehouse %s: %w", path, err)
		}
	}
	conn, err := duck.NewConnector(path, func(ex driver.ExecerContext) error {
		_, err := ex.ExecContext(ctx, "SET TimeZone = 'UTC'", nil)
		return err
	})
	if err != nil {
		if strings.Contains(err.Error(), "lock") {
			err = fmt.Errorf("%w: %v", warehouse.ErrConflict, err)
		}
		return nil, fmt.Errorf("open warehouse %s: %w", path, err)
	}
	db := sql.OpenDB(conn)
	if err := db.PingContext(ctx); err != nil {
		db.Close()
		conn.Close()
		return nil, fmt.Errorf("open warehouse %s: %w", path, err)
	}
	return &Warehouse{db: db, conn: conn, schema: Schema}, nil
}

// DB is the underlying database, for read-only queries (tests, dq).
func (w *Warehouse) DB() *sql.DB { return w.db }

// FailpointSteps lists the load steps, in order (tests).
func (w *Warehouse) FailpointSteps() []string {
	return []string{StepDeleted, StepInserted, StepVerified, StepHistory}
}

// SetFailpoint sets Failpoint (tests).
func (w *Warehouse) SetFailpoint(f func(step string) error) { w.Failpoint = f }

// WithSchema is a warehouse on the same connection whose raw tables and load history are
// in schema (a restore's); closing it leaves w open. A DuckDB file has one writing
// process, so a restore loads through its raw warehouse's connection.
func (w *Warehouse) WithSchema(schema string) *Warehouse {
	return &Warehouse{db: w.db, conn: w.conn, schema: schema, shared: true, Failpoint: w.Failpoint}
}

// Close closes the database.
func (w *Warehouse) Close() error {
	if w.shared {
		return nil
	}
	err := w.db.Close()
	if cerr := w.conn.Close(); err == nil {
		err = cerr
	}
	return err
}

// Version is DuckDB's SELECT version() (the engine duckdb-go embeds).
func (w *Warehouse) Version(ctx context.Context) (string, error) {
	var v string
	err := w.db.QueryRowContext(ctx, "SELECT version()").Scan(&v)
	return v, err
}

var colType = map[string]string{
	"uuid": "VARCHAR", "text": "VARCHAR", "bigint": "BIGINT", "integer": "INTEGER",
	"boolean": "BOOLEAN", "timestamptz": "TIMESTAMPTZ", "date": "DATE",
}

// CreateTableSQL is the DDL of <schema>.<t>.
func CreateTableSQL(schema string, t registry.Table) (string, error) {
	var cols []string
	for _, c := range warehouse.Columns(t) {
		typ, ok := colType[c.Type]
		if !ok {
			return "", fmt.Errorf("table %s column %s: type %s has no DuckDB type", t.Name, c.Name, c.Type)
		}
		cols = append(cols, "  "+c.Name+" "+typ)
	}
	return fmt.Sprintf("CREATE TABLE IF NOT EXISTS %s.%s (\n%s\n)", schema, t.Name, strings.Join(cols, ",\n")), nil
}

const historyDDL = `CREATE TABLE IF NOT EXISTS %s.` + warehouse.HistoryTable + ` (
  file_key VARCHAR PRIMARY KEY,
  table_name VARCHAR NOT NULL,
  shard VARCHAR NOT NULL,
  source VARCHAR NOT NULL,
  rows BIGINT NOT NULL,
  checksum VARCHAR NOT NULL,
  data_sha256 VARCHAR NOT NULL,
  loaded_at TIMESTAMPTZ NOT NULL
)`

// Ensure implements warehouse.Warehouse.
func (w *Warehouse) Ensure(ctx context.Context, tables []registry.Table) error {
	w.mu.Lock()
	defer w.mu.Unlock()
	stmts := []string{"CREATE SCHEMA IF NOT EXISTS " + w.schema, fmt.Sprintf(historyDDL, w.schema)}
	for _, t := range tables {
		ddl, err := CreateTableSQL(w.schema, t)
		if err != nil {
			return err
		}
		stmts = append(stmts, ddl)
	}
	for _, s := range stmts {
		if _, err := w.db.ExecContext(ctx, s); err != nil {
			return fmt.Errorf("ensure raw tables: %w", classify(err))
		}
	}
	for _, t := range tables {
		add, err := w.addColumnsSQL(ctx, t)
		if err != nil {
			return err
		}
		for _, s := range add {
			if _, err := w.db.ExecContext(ctx, s); err != nil {
				return fmt.Errorf("ensure raw tables: add a declared column: %w", classify(err))
			}
		}
	}
	return nil
}

// addColumnsSQL are the statements that add to raw.<t> the columns of
// warehouse.Columns(t) it lacks: a column declared in shards.yaml after the table was
// created (docs/runbooks/schema-change.md). Rows loaded before have NULL in it.
func (w *Warehouse) addColumnsSQL(ctx context.Context, t registry.Table) ([]string, error) {
	rows, err := w.db.QueryContext(ctx, "SELECT lower(column_name) FROM information_schema.columns WHERE table_schema = ? AND table_name = ?", w.schema, t.Name)
	if err != nil {
		return nil, fmt.Errorf("ensure raw tables: list the columns of %s: %w", t.Name, classify(err))
	}
	defer rows.Close()
	have := map[string]bool{}
	for rows.Next() {
		var c string
		if err := rows.Scan(&c); err != nil {
			return nil, err
		}
		have[c] = true
	}
	if err := rows.Err(); err != nil {
		return nil, err
	}
	var out []string
	for _, c := range warehouse.Columns(t) {
		if !have[c.Name] {
			out = append(out, fmt.Sprintf("ALTER TABLE %s.%s ADD COLUMN IF NOT EXISTS %s %s", w.schema, t.Name, c.Name, colType[c.Type]))
		}
	}
	return out, nil
}

// classify marks DuckDB's transaction conflicts as warehouse.ErrConflict.
func classify(err error) error {
	var de *duck.Error
	if errors.As(err, &de) && de.Type == duck.ErrorTypeTransaction {
		return fmt.Errorf("%w: %v", warehouse.ErrConflict, err)
	}
	return err
}

// LoadFile implements warehouse.Warehouse: one transaction deletes the key's old rows,
// inserts the file's rows with read_parquet, checks count and checksum against the
// manifest and upserts the history entry.
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
	if f.Path == "" {
		return res, errors.New("duckdb needs a local copy of the data file (File.Path)")
	}
	if len(m.Columns) == 0 {
		return res, errors.New("manifest lists no columns")
	}
	w.mu.Lock()
	defer w.mu.Unlock()

	tx, err := w.db.BeginTx(ctx, nil)
	if err != nil {
		return res, classify(err)
	}
	defer tx.Rollback()

	var known string
	switch err := tx.QueryRowContext(ctx, "SELECT data_sha256 FROM "+w.schema+"."+warehouse.HistoryTable+" WHERE file_key = ?", m.DataKey).Scan(&known); {
	case errors.Is(err, sql.ErrNoRows):
	case err != nil:
		return res, fmt.Errorf("read load history: %w", classify(err))
	case known == m.DataSHA256:
		return warehouse.LoadResult{Skipped: true}, nil
	default:
		res.Replaced = true
	}
	fail := func(step string) error {
		if w.Failpoint != nil {
			return w.Failpoint(step)
		}
		return nil
	}
	table := w.schema + "." + f.Table.Name
	if _, err := tx.ExecContext(ctx, "DELETE FROM "+table+" WHERE "+warehouse.ColFile+" = ?", m.DataKey); err != nil {
		return res, fmt.Errorf("delete old rows: %w", classify(err))
	}
	if err := fail(StepDeleted); err != nil {
		return res, err
	}
	names := warehouse.LoadColumns(m)
	// hive_partitioning off: the landing key's "source=…/shard=…/dt=…" must not turn
	// into columns that could shadow the file's own.
	ins := fmt.Sprintf("INSERT INTO %s BY NAME SELECT %s, ? AS %s, now() AS %s FROM read_parquet(?, hive_partitioning = false)",
		table, strings.Join(names, ", "), warehouse.ColFile, warehouse.ColLoadedAt)
	r, err := tx.ExecContext(ctx, ins, m.DataKey, f.Path)
	if err != nil {
		return res, fmt.Errorf("insert rows: %w", classify(err))
	}
	res.Rows, _ = r.RowsAffected()
	if err := fail(StepInserted); err != nil {
		return res, err
	}
	cnt, sum := landing.ChecksumSQL(landing.DuckDB, f.Table.PrimaryKey, f.Table.Version)
	var n int64
	var s string
	if err := tx.QueryRowContext(ctx, fmt.Sprintf("SELECT %s, %s FROM %s WHERE %s = ?", cnt, sum, table, warehouse.ColFile), m.DataKey).Scan(&n, &s); err != nil {
		return res, fmt.Errorf("verify rows: %w", classify(err))
	}
	if n != m.Rows || s != m.Checksum {
		return res, fmt.Errorf("%w: file has %d rows checksum %s, manifest says %d rows checksum %s", warehouse.ErrMismatch, n, s, m.Rows, m.Checksum)
	}
	if err := fail(StepVerified); err != nil {
		return res, err
	}
	hist := `INSERT INTO ` + w.schema + `.` + warehouse.HistoryTable + ` VALUES (?, ?, ?, ?, ?, ?, ?, now())
		ON CONFLICT (file_key) DO UPDATE SET table_name = excluded.table_name, shard = excluded.shard, source = excluded.source,
		rows = excluded.rows, checksum = excluded.checksum, data_sha256 = excluded.data_sha256, loaded_at = excluded.loaded_at`
	if _, err := tx.ExecContext(ctx, hist, m.DataKey, m.Table, m.Shard, string(m.Source), m.Rows, m.Checksum, m.DataSHA256); err != nil {
		return res, fmt.Errorf("write load history: %w", classify(err))
	}
	if err := fail(StepHistory); err != nil {
		return res, err
	}
	if err := tx.Commit(); err != nil {
		return res, fmt.Errorf("commit: %w", classify(err))
	}
	return res, nil
}

// History implements warehouse.Warehouse.
func (w *Warehouse) History(ctx context.Context, f warehouse.HistoryFilter) ([]warehouse.HistoryEntry, error) {
	q := `SELECT file_key, table_name, shard, source, rows, checksum, data_sha256, loaded_at FROM ` + w.schema + `.` + warehouse.HistoryTable +
		` WHERE (? = '' OR table_name = ?) AND (? = '' OR shard = ?) AND (? = '' OR file_key = ?)`
	args := []any{f.Table, f.Table, f.Shard, f.Shard, f.Key, f.Key}
	if len(f.Prefixes) > 0 {
		q += " AND (" + strings.TrimSuffix(strings.Repeat("starts_with(file_key, ?) OR ", len(f.Prefixes)), " OR ") + ")"
		for _, p := range f.Prefixes {
			args = append(args, p)
		}
	}
	rows, err := w.db.QueryContext(ctx, q+" ORDER BY file_key", args...)
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

func (w *Warehouse) checksum(ctx context.Context, t registry.Table, where string, args ...any) (int64, string, error) {
	cnt, sum := landing.ChecksumSQL(landing.DuckDB, t.PrimaryKey, t.Version)
	var n int64
	var s string
	err := w.db.QueryRowContext(ctx, fmt.Sprintf("SELECT %s, %s FROM %s.%s WHERE %s", cnt, sum, w.schema, t.Name, where), args...).Scan(&n, &s)
	return n, s, err
}

// FileChecksum implements warehouse.Checker.
func (w *Warehouse) FileChecksum(ctx context.Context, t registry.Table, key string) (int64, string, error) {
	n, s, err := w.checksum(ctx, t, warehouse.ColFile+" = ?", key)
	if err != nil {
		return 0, "", fmt.Errorf("checksum of file %s: %w", key, err)
	}
	return n, s, nil
}

// FileLoadedAt implements warehouse.Checker.
func (w *Warehouse) FileLoadedAt(ctx context.Context, t registry.Table, key string) (time.Time, error) {
	var at time.Time
	q := fmt.Sprintf("SELECT max(%s) FROM %s.%s WHERE %s = ?", warehouse.ColLoadedAt, w.schema, t.Name, warehouse.ColFile)
	if err := w.db.QueryRowContext(ctx, q, key).Scan(&at); err != nil {
		return time.Time{}, fmt.Errorf("loaded_at of file %s: %w", key, err)
	}
	return at, nil
}

// WindowChecksum implements warehouse.Checker.
func (w *Warehouse) WindowChecksum(ctx context.Context, t registry.Table, shard string, win window.Window) (int64, string, error) {
	n, s, err := w.checksum(ctx, t, fmt.Sprintf("%s = 'batch' AND %s = ? AND %s >= ? AND %s < ?", landing.ColSource, landing.ColShard, t.Watermark, t.Watermark),
		shard, win.Start.UTC(), win.End.UTC())
	if err != nil {
		return 0, "", fmt.Errorf("checksum of shard %s table %s window %s/%s: %w", shard, t.Name, win.Start.UTC().Format(time.RFC3339), win.End.UTC().Format(time.RFC3339), err)
	}
	return n, s, nil
}

// DuplicateKeys implements warehouse.Checker.
func (w *Warehouse) DuplicateKeys(ctx context.Context, t registry.Table, limit int) (int64, []string, error) {
	return duplicateKeys(ctx, w.db, w.schema, t, limit)
}

func duplicateKeys(ctx context.Context, db *sql.DB, schema string, t registry.Table, limit int) (int64, []string, error) {
	n, keys, err := warehouse.QueryDuplicateKeys(ctx, db, warehouse.DuplicateKeysSQL(schema, t, limit))
	if err != nil {
		return 0, nil, fmt.Errorf("duplicate keys of table %s: %w", t.Name, err)
	}
	return n, keys, nil
}

// StringColumns implements warehouse.Checker.
func (w *Warehouse) StringColumns(ctx context.Context) (map[string][]string, error) {
	rows, err := w.db.QueryContext(ctx, `SELECT table_name, column_name FROM information_schema.columns
		WHERE table_schema = ? AND data_type = 'VARCHAR' AND table_name <> ? ORDER BY table_name, ordinal_position`, w.schema, warehouse.HistoryTable)
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
		out[strings.ToLower(t)] = append(out[strings.ToLower(t)], c)
	}
	return out, rows.Err()
}

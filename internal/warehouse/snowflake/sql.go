package snowflake

import (
	"fmt"
	"path"
	"regexp"
	"strings"
	"time"

	"github.com/shopsphere/shardflow/internal/landing"
	"github.com/shopsphere/shardflow/internal/registry"
	"github.com/shopsphere/shardflow/internal/warehouse"
	"github.com/shopsphere/shardflow/internal/window"
)

// Config says where the raw tables and the stage are.
type Config struct {
	Database string // qualifier of the raw schema, e.g. ANALYTICS ("" = the session's database)
	Schema   string // the raw schema, e.g. RAW
	// Stage is the external stage whose URL is the landing store's root (the bucket and
	// prefix the object keys are relative to), e.g. RAW.LANDING_STAGE over
	// s3://shopsphere-lake/shardflow/. Data keys are read as @<Stage>/<key>.
	Stage string

	// Emulator switches, for fakesnow only (docs/warehouse.md says why):
	//   StampAfterCopy: fakesnow has no INCLUDE_METADATA; fill _file and _loaded_at with
	//   an UPDATE of the rows the COPY left NULL, inside the same transaction.
	//   ClientChecksum: fakesnow has no TO_NUMBER(<hex>, 'XXX…'); read (key, version)
	//   pairs and sum landing.RowHash in Go.
	StampAfterCopy bool
	ClientChecksum bool
}

// Validate checks the names.
func (c Config) Validate() error {
	ident := identPattern
	if c.Database != "" && !ident.MatchString(c.Database) {
		return fmt.Errorf("snowflake warehouse: database %q is not an identifier", c.Database)
	}
	if !ident.MatchString(c.Schema) {
		return fmt.Errorf("snowflake warehouse: schema %q is not an identifier", c.Schema)
	}
	for _, p := range strings.Split(c.Stage, ".") {
		if !ident.MatchString(p) {
			return fmt.Errorf("snowflake warehouse: stage %q is not a (qualified) identifier", c.Stage)
		}
	}
	return nil
}

func (c Config) schema() string {
	if c.Database == "" {
		return c.Schema
	}
	return c.Database + "." + c.Schema
}

func (c Config) table(t string) string { return c.schema() + "." + t }

func (c Config) history() string { return c.table(warehouse.HistoryTable) }

var colType = map[string]string{
	"uuid": "VARCHAR", "text": "VARCHAR", "bigint": "NUMBER(19,0)", "integer": "NUMBER(10,0)",
	"boolean": "BOOLEAN", "timestamptz": "TIMESTAMP_TZ", "date": "DATE",
}

// EnsureSQL is the DDL of the raw schema, its tables and the load history.
func EnsureSQL(c Config, tables []registry.Table) ([]string, error) {
	out := []string{
		"CREATE SCHEMA IF NOT EXISTS " + c.schema(),
		`CREATE TABLE IF NOT EXISTS ` + c.history() + ` (
  file_key VARCHAR NOT NULL PRIMARY KEY,
  table_name VARCHAR NOT NULL,
  shard VARCHAR NOT NULL,
  source VARCHAR NOT NULL,
  "ROWS" NUMBER(19,0) NOT NULL,
  checksum VARCHAR NOT NULL,
  data_sha256 VARCHAR NOT NULL,
  loaded_at TIMESTAMP_TZ NOT NULL
)`,
	}
	for _, t := range tables {
		var cols []string
		for _, col := range warehouse.Columns(t) {
			typ, ok := colType[col.Type]
			if !ok {
				return nil, fmt.Errorf("table %s column %s: type %s has no Snowflake type", t.Name, col.Name, col.Type)
			}
			cols = append(cols, "  "+col.Name+" "+typ)
		}
		out = append(out, fmt.Sprintf("CREATE TABLE IF NOT EXISTS %s (\n%s\n)", c.table(t.Name), strings.Join(cols, ",\n")))
	}
	return out, nil
}

// infoColumns is the INFORMATION_SCHEMA.COLUMNS view of the raw schema's database.
func (c Config) infoColumns() string {
	if c.Database == "" {
		return "INFORMATION_SCHEMA.COLUMNS"
	}
	return c.Database + ".INFORMATION_SCHEMA.COLUMNS"
}

// ColumnsSQL lists the columns the raw tables have, as (table_name, column_name).
func ColumnsSQL(c Config, tables []registry.Table) string {
	names := make([]string, len(tables))
	for i, t := range tables {
		names[i] = "UPPER(" + lit(t.Name) + ")"
	}
	return fmt.Sprintf("SELECT table_name, column_name FROM %s WHERE UPPER(table_schema) = UPPER(%s) AND UPPER(table_name) IN (%s)",
		c.infoColumns(), lit(c.Schema), strings.Join(names, ", "))
}

// AddColumnsSQL are the statements that add to raw.<t> the columns of warehouse.Columns(t)
// that have (lower-case names) lacks: a column declared in shards.yaml after the table
// was created (docs/runbooks/schema-change.md). IF NOT EXISTS keeps a concurrent
// loader's same ALTER harmless.
func AddColumnsSQL(c Config, t registry.Table, have map[string]bool) ([]string, error) {
	var out []string
	for _, col := range warehouse.Columns(t) {
		if have[col.Name] {
			continue
		}
		typ, ok := colType[col.Type]
		if !ok {
			return nil, fmt.Errorf("table %s column %s: type %s has no Snowflake type", t.Name, col.Name, col.Type)
		}
		out = append(out, fmt.Sprintf("ALTER TABLE %s ADD COLUMN IF NOT EXISTS %s %s", c.table(t.Name), col.Name, typ))
	}
	return out, nil
}

var keyPattern = regexp.MustCompile(`^landing/[A-Za-z0-9_./=-]+\.parquet$`)

// lit quotes a value that has passed keyPattern or comes from our own formatting.
func lit(s string) string {
	return "'" + strings.ReplaceAll(strings.ReplaceAll(s, `\`, `\\`), "'", "''") + "'"
}

// ts is an instant as a TIMESTAMP_TZ literal (ISO 8601, UTC).
func ts(t time.Time) string {
	return "TO_TIMESTAMP_TZ('" + t.UTC().Format("2006-01-02T15:04:05.000000Z") + "')"
}

// Load is the statements of one file's load, in the order LoadFile runs them inside one
// transaction (Stamp only with StampAfterCopy).
type Load struct {
	Delete        string // the key's old rows; also takes the table's DML lock
	Lookup        string // the key's history entry (data_sha256), read after the lock
	Copy          string // COPY INTO from the stage, matched by column name
	Stamp         string // emulator only: _file and _loaded_at of the copied rows
	Verify        string // count and checksum of the key's rows (or its (key, version) pairs)
	HistoryDelete string // the key's old history entry
	History       string // the new history entry
}

// LoadSQL builds the statements that load the file of manifest m into raw.<t>.
func LoadSQL(c Config, t registry.Table, m *landing.Manifest) (Load, error) {
	if !keyPattern.MatchString(m.DataKey) {
		return Load{}, fmt.Errorf("data key %q is not a landing key", m.DataKey)
	}
	table := c.table(t.Name)
	key := lit(m.DataKey)
	dir, file := path.Split(m.DataKey)
	l := Load{
		Delete: fmt.Sprintf("DELETE FROM %s WHERE %s = %s", table, warehouse.ColFile, key),
		Lookup: fmt.Sprintf("SELECT data_sha256 FROM %s WHERE file_key = %s", c.history(), key),
	}
	// MATCH_BY_COLUMN_NAME cannot be combined with a COPY transformation (a SELECT over
	// the stage), so the lineage of the load comes from INCLUDE_METADATA, which only
	// works with MATCH_BY_COLUMN_NAME. METADATA$FILENAME is the path relative to the
	// stage's URL: the data key. FORCE = TRUE: our history, not COPY's 64-day load
	// metadata, decides what is loaded (a replaced file must load again).
	meta := fmt.Sprintf("\n  INCLUDE_METADATA = (%s = METADATA$FILENAME, %s = METADATA$START_SCAN_TIME)", warehouse.ColFile, warehouse.ColLoadedAt)
	if c.StampAfterCopy {
		meta = ""
		l.Stamp = fmt.Sprintf("UPDATE %s SET %s = %s, %s = CURRENT_TIMESTAMP() WHERE %s IS NULL",
			table, warehouse.ColFile, key, warehouse.ColLoadedAt, warehouse.ColFile)
	}
	l.Copy = fmt.Sprintf(`COPY INTO %s
  FROM @%s/%s
  FILES = (%s)
  FILE_FORMAT = (TYPE = PARQUET USE_LOGICAL_TYPE = TRUE)
  MATCH_BY_COLUMN_NAME = CASE_INSENSITIVE%s
  ON_ERROR = ABORT_STATEMENT
  FORCE = TRUE`, table, c.Stage, dir, lit(file), meta)
	l.Verify = verifySQL(c, t, fmt.Sprintf("%s = %s", warehouse.ColFile, key))
	// DELETE + INSERT rather than MERGE: the same inside the transaction, and fakesnow
	// cannot run a MERGE in a transaction that already wrote (docs/warehouse.md).
	l.HistoryDelete = fmt.Sprintf("DELETE FROM %s WHERE file_key = %s", c.history(), key)
	// loaded_at is the rows' _loaded_at (the COPY's METADATA$START_SCAN_TIME), so a
	// mark taken on the history selects exactly the rows loaded up to it (dbt finance,
	// docs/decisions/0012); an empty file has no rows and takes the current time.
	l.History = fmt.Sprintf(`INSERT INTO %s (file_key, table_name, shard, source, "ROWS", checksum, data_sha256, loaded_at)
  SELECT %s, %s, %s, %s, %d, %s, %s,
    COALESCE((SELECT MAX(%s) FROM %s WHERE %s = %s), CURRENT_TIMESTAMP())`,
		c.history(), key, lit(m.Table), lit(m.Shard), lit(string(m.Source)), m.Rows, lit(m.Checksum), lit(m.DataSHA256),
		warehouse.ColLoadedAt, table, warehouse.ColFile, key)
	return l, nil
}

// verifySQL selects count and checksum of the rows of t matching where, or with
// ClientChecksum their (key text, version) pairs.
func verifySQL(c Config, t registry.Table, where string) string {
	if c.ClientChecksum {
		return fmt.Sprintf("SELECT %s, %s FROM %s WHERE %s", warehouse.KeyTextSQL(t), t.Version, c.table(t.Name), where)
	}
	cnt, sum := landing.ChecksumSQL(landing.Snowflake, t.PrimaryKey, t.Version)
	return fmt.Sprintf("SELECT %s, %s FROM %s WHERE %s", cnt, sum, c.table(t.Name), where)
}

// WindowWhere selects shard's batch rows of t with the watermark in w.
func WindowWhere(t registry.Table, shard string, w window.Window) string {
	return fmt.Sprintf("%s = 'batch' AND %s = %s AND %s >= %s AND %s < %s",
		landing.ColSource, landing.ColShard, lit(shard), t.Watermark, ts(w.Start), t.Watermark, ts(w.End))
}

// Package warehouse is the seam between landed files and the analytical warehouse
// (docs/contracts.md §6): raw.<table> holds every landed file's rows with its key in
// _file, raw._load_history holds one row per loaded file, and a load is file-level
// idempotent. Backends are sibling packages: duckdb (local, embedded) and snowflake
// (production, COPY INTO from an external stage over the landing bucket).
package warehouse

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/shopsphere/shardflow/internal/landing"
	"github.com/shopsphere/shardflow/internal/registry"
	"github.com/shopsphere/shardflow/internal/window"
)

// Raw-table names and columns every backend shares.
const (
	HistoryTable = "_load_history" // in the raw schema
	ColFile      = "_file"         // the data key a row was loaded from
	ColLoadedAt  = "_loaded_at"    // when the load that wrote the row ran
)

// Errors. A load that fails with ErrMismatch changed nothing and must not be retried
// blindly: the file disagrees with its manifest. ErrConflict means another writer held
// the warehouse; running again can succeed.
var (
	ErrMismatch = errors.New("loaded rows differ from the manifest")
	ErrConflict = errors.New("warehouse write conflict")
)

// File is one landed data file handed to LoadFile.
type File struct {
	Table    registry.Table    // the table's definition in shards.yaml (key, version, columns)
	Manifest *landing.Manifest // the file's manifest; DataKey names the file
	// Path is a local file with the data file's bytes, already checked against
	// Manifest.DataSHA256 by the caller. Backends that read the object store
	// themselves (StageReader) ignore it; for the others it is required.
	Path string
}

// LoadResult says what a LoadFile call did.
type LoadResult struct {
	Skipped  bool  // the same key with the same data_sha256 was loaded before: nothing changed
	Replaced bool  // the key was loaded before with another sha: its old rows were replaced
	Rows     int64 // rows written (0 when skipped)
}

// HistoryEntry is one row of raw._load_history.
type HistoryEntry struct {
	FileKey    string
	Table      string
	Shard      string
	Source     string
	Rows       int64
	Checksum   string
	DataSHA256 string
	LoadedAt   time.Time
}

// HistoryFilter selects history entries; empty fields match everything.
type HistoryFilter struct {
	Table string
	Shard string
	Key   string // one data key
	// Prefixes, when not empty, keeps the data keys that start with one of them (landing
	// prefixes, e.g. the days of each shard a CDC micro-batch lists): one query
	// however many prefixes, taken literally (not LIKE patterns).
	Prefixes []string
}

// Warehouse loads landed files into raw tables.
//
// Idempotency, per file (one manifest's data key):
//   - a file whose key is in raw._load_history with the same data_sha256 is skipped: the
//     call writes nothing and returns Skipped;
//   - a file whose key is there with another sha (a re-extracted window or re-written CDC
//     range) replaces that key's rows: the old rows and the old history entry go, the new
//     ones come, in one transaction, and the call returns Replaced;
//   - otherwise the rows are appended and the history entry written, in one transaction.
//
// Before committing, a backend checks the rows it wrote under the key against the
// manifest's rows and checksum; any difference rolls the transaction back and returns an
// error wrapping ErrMismatch. So raw.<table> holds, for every key in the history, exactly
// the rows of that entry's file, and never a part of a file: a crash, a cancelled context
// or a failed statement anywhere in LoadFile leaves the previous state. Two LoadFile calls
// for the same file, concurrent or not, leave the rows once.
type Warehouse interface {
	// Ensure creates what loading needs, if missing: the raw schema, raw.<table> for each
	// table (its landed columns, then the lineage columns, then _file and _loaded_at), and
	// raw._load_history. It never drops or alters existing objects. Idempotent.
	Ensure(ctx context.Context, tables []registry.Table) error
	// LoadFile loads one landed file with the guarantees above.
	LoadFile(ctx context.Context, f File) (LoadResult, error)
	// History returns the load-history entries that match, ordered by file key.
	History(ctx context.Context, filter HistoryFilter) ([]HistoryEntry, error)
	// Close releases the connection.
	Close() error
}

// StageReader is implemented by warehouses that read data files straight from the
// object store (Snowflake, through an external stage over the landing bucket's root).
// The caller still verifies each file's sha256 but need not give it a local copy.
type StageReader interface {
	ReadsStage() bool
}

// Checker answers dq's warehouse-side questions over raw tables. Counts and checksums
// use landing.ChecksumSQL semantics (docs/contracts.md §5), so they compare with a
// manifest and with the source shard.
type Checker interface {
	// FileChecksum is the count and checksum of the rows loaded from one data key.
	FileChecksum(ctx context.Context, t registry.Table, fileKey string) (rows int64, checksum string, err error)
	// FileLoadedAt is the latest _loaded_at of the rows loaded from one data key; for a
	// file with rows it equals its history entry's loaded_at (finance marks rely on it).
	FileLoadedAt(ctx context.Context, t registry.Table, fileKey string) (time.Time, error)
	// WindowChecksum is the count and checksum of shard's batch rows of t whose
	// watermark is in w.
	WindowChecksum(ctx context.Context, t registry.Table, shard string, w window.Window) (rows int64, checksum string, err error)
	// DuplicateKeys counts (global key, version) pairs that occur more than once among
	// one shard's batch rows (an exactly-once violation: windows do not overlap and a
	// reloaded file replaces its rows), and returns up to limit of them as text.
	DuplicateKeys(ctx context.Context, t registry.Table, limit int) (n int64, keys []string, err error)
	// StringColumns lists the string columns of every raw table (lower-case table name →
	// column names), the candidates of a PCI leak scan.
	StringColumns(ctx context.Context) (map[string][]string, error)
}

// LoadError names the file a load failed on.
type LoadError struct {
	Key   string
	Table string
	Shard string
	Err   error
}

func (e *LoadError) Error() string {
	return fmt.Sprintf("load file %s (table %s, shard %s): %v", e.Key, e.Table, e.Shard, e.Err)
}

func (e *LoadError) Unwrap() error { return e.Err }

// Columns is the full column list of raw.<table>: the landed columns and lineage
// (landing.Columns), then _file (text) and _loaded_at (timestamptz).
func Columns(t registry.Table) []landing.Column {
	return append(landing.Columns(t), landing.Column{Name: ColFile, Type: "text"}, landing.Column{Name: ColLoadedAt, Type: "timestamptz"})
}

// CheckManifest checks that a manifest belongs to table t and that its columns are
// columns of the raw table with the same types, so a load can match them by name; a
// retired lineage column of an older file is allowed (and not loaded, LoadColumns).
func CheckManifest(t registry.Table, m *landing.Manifest) error {
	if m.Table != t.Name {
		return fmt.Errorf("manifest of %s is for table %s, not %s", m.DataKey, m.Table, t.Name)
	}
	want := map[string]string{}
	for _, c := range landing.Columns(t) {
		want[c.Name] = c.Type
	}
	for _, c := range m.Columns {
		typ, ok := want[c.Name]
		if !ok && landing.RetiredColumns[c.Name] {
			continue // an older file's lineage column: not loaded (LoadColumns)
		}
		if !ok {
			return fmt.Errorf("manifest of %s: column %s is not a landed column of %s in shards.yaml", m.DataKey, c.Name, t.Name)
		}
		if typ != c.Type {
			return fmt.Errorf("manifest of %s: column %s has type %s, shards.yaml says %s", m.DataKey, c.Name, c.Type, typ)
		}
	}
	return nil
}

// LoadColumns are the names of the manifest's columns a backend loads: all but the
// retired lineage columns of files landed by earlier versions (landing.RetiredColumns).
func LoadColumns(m *landing.Manifest) []string {
	var out []string
	for _, c := range m.Columns {
		if !landing.RetiredColumns[c.Name] {
			out = append(out, c.Name)
		}
	}
	return out
}

package retention

import (
	"context"
	"crypto/sha256"
	"database/sql"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"log/slog"
	"sort"
	"strings"
	"time"

	"github.com/shopsphere/shardflow/internal/landing"
	"github.com/shopsphere/shardflow/internal/registry"
	"github.com/shopsphere/shardflow/internal/warehouse"
)

// PurgeLog is the raw-schema table that records every purged file: one row per data
// key and sha, written in the transaction that deleted the file's rows.
const PurgeLog = "_purge_log"

// ErrArchive marks a file the purge could not find in the archive as it was loaded:
// its object or manifest missing, unreadable, or with another sha256. Nothing is purged
// while one is reported (docs/runbooks/retention.md).
var ErrArchive = errors.New("not verified in the archive")

// Store is what the purge and the restore read of the object store.
type Store interface {
	Get(ctx context.Context, key string) (io.ReadCloser, error)
}

// Warehouse is the part of an opened warehouse the purge needs: its load history, and
// SQL on the raw schema.
type Warehouse interface {
	History(ctx context.Context, f warehouse.HistoryFilter) ([]warehouse.HistoryEntry, error)
	DB() *sql.DB
}

// Purger removes raw rows past the hot period from the warehouse (docs/retention.md).
//
// A file is past the hot period when its newest data is older than the table's hot
// period before Now: a batch file by its window's end, a CDC file by its newest commit
// (commit_last; the end of its dt= day when it holds only tombstones). For each such
// file, the purge first verifies the archive: the manifest is in the object store and
// names the data_sha256 the warehouse loaded, and the data object's bytes hash to it.
// Only when every file past the hot period is verified does it delete anything.
//
// It keeps, of a purged file's rows, those at the highest version of their key on
// their shard: so every key's latest owned version stays (a newer version of a key is
// only ever written on its owner, and copies carry the original's version), and a
// full refresh of the intermediates and fact_orders, or a finance run, computes the same
// latest versions as before the purge. The rows of older versions go.
//
// Each file is purged in one transaction with its _purge_log row: a purge killed at any
// point leaves whole files purged or not, and running it again goes on where it
// stopped and changes nothing for files already purged (idempotent). A file loaded
// again with another sha (a re-extracted window) is purged again.
type Purger struct {
	Registry  *registry.Registry
	Store     Store
	Warehouse Warehouse
	Raw       string // the raw schema as SQL names it
	Snowflake bool   // the warehouse's SQL dialect: Snowflake, else DuckDB
	Now       time.Time
	Log       *slog.Logger

	// Failpoint, when set (tests only), is called with "deleted" inside a file's
	// transaction (after its rows are deleted, before the log row) and "committed"
	// after it; an error stops the purge there, as a kill would.
	Failpoint func(step, key string) error
}

// Candidate is a loaded file past its table's hot period.
type Candidate struct {
	warehouse.HistoryEntry
	Newest time.Time // the newest data the file holds (window end, commit_last or day end)
	Cutoff time.Time // the table's hot-period boundary
}

// PurgeSummary says what a purge did (or, dry, would do).
type PurgeSummary struct {
	Candidates int   // files past the hot period not purged yet
	Verified   int   // of which verified in the archive
	Purged     int   // files purged now
	Already    int   // files past the hot period purged before
	Deleted    int64 // raw rows deleted
	Kept       int64 // rows of purged files kept: their key's latest version on the shard
}

func (p *Purger) log() *slog.Logger {
	if p.Log != nil {
		return p.Log
	}
	return slog.New(slog.NewTextHandler(io.Discard, nil))
}

// EnsureLog creates the purge log if missing.
func (p *Purger) EnsureLog(ctx context.Context) error {
	_, err := p.Warehouse.DB().ExecContext(ctx, PurgeLogDDL(p.Raw, p.Snowflake))
	return err
}

// PurgeLogDDL is the purge log's CREATE TABLE in schema raw.
func PurgeLogDDL(raw string, snowflake bool) string {
	text, num, ts := "VARCHAR", "BIGINT", "TIMESTAMPTZ"
	if snowflake {
		text, num, ts = "VARCHAR", "NUMBER(38,0)", "TIMESTAMP_TZ"
	}
	return fmt.Sprintf(`CREATE TABLE IF NOT EXISTS %s.%s (
  file_key %[3]s NOT NULL,
  table_name %[3]s NOT NULL,
  shard %[3]s NOT NULL,
  data_sha256 %[3]s NOT NULL,
  rows_loaded %[4]s NOT NULL,
  rows_deleted %[4]s NOT NULL,
  rows_kept %[4]s NOT NULL,
  newest_data %[5]s NOT NULL,
  hot_cutoff %[5]s NOT NULL,
  purged_at %[5]s NOT NULL
)`, raw, PurgeLog, text, num, ts)
}

// purged is the data_sha256 of every file in the purge log, by key.
func (p *Purger) purged(ctx context.Context) (map[string]string, error) {
	rows, err := p.Warehouse.DB().QueryContext(ctx, fmt.Sprintf("SELECT file_key, data_sha256 FROM %s.%s", p.Raw, PurgeLog))
	if err != nil {
		return nil, fmt.Errorf("read %s.%s: %w", p.Raw, PurgeLog, err)
	}
	defer rows.Close()
	out := map[string]string{}
	for rows.Next() {
		var k, sha string
		if err := rows.Scan(&k, &sha); err != nil {
			return nil, err
		}
		out[k] = sha
	}
	return out, rows.Err()
}

// Candidates lists the loaded files past their table's hot period, in key order, and
// how many of those were purged before. It reads each candidate's manifest for its
// newest data, so it reports a manifest it cannot read as an archive failure too.
func (p *Purger) Candidates(ctx context.Context) ([]Candidate, int, []error, error) {
	done, err := p.purged(ctx)
	if err != nil {
		return nil, 0, nil, err
	}
	tables := map[string]registry.Table{}
	for _, t := range p.Registry.Tables {
		tables[t.Name] = t
	}
	hist, err := p.Warehouse.History(ctx, warehouse.HistoryFilter{})
	if err != nil {
		return nil, 0, nil, err
	}
	var out []Candidate
	var problems []error
	already := 0
	for _, e := range hist {
		if _, ok := tables[e.Table]; !ok {
			continue // a table no longer in shards.yaml: its rows are not the purge's to judge
		}
		hot, _ := p.Registry.Retention.TablePeriods(e.Table)
		cutoff := hot.Before(p.Now)
		day, ok := keyDay(e.FileKey)
		if !ok || !day.Before(cutoff) {
			continue // its data starts on its dt= day (a CDC file may span later days)
		}
		if done[e.FileKey] == e.DataSHA256 {
			already++
			continue
		}
		m, err := p.manifest(ctx, e)
		if err != nil {
			problems = append(problems, err)
			continue
		}
		newest := day.Add(24 * time.Hour)
		switch {
		case m.WindowEnd != nil:
			newest = *m.WindowEnd
		case m.CommitLast != nil:
			newest = *m.CommitLast
		}
		if newest.After(cutoff) {
			continue
		}
		out = append(out, Candidate{HistoryEntry: e, Newest: newest, Cutoff: cutoff})
	}
	return out, already, problems, nil
}

// keyDay reads the dt= day of a landing key.
func keyDay(key string) (time.Time, bool) {
	_, rest, ok := strings.Cut(key, "/dt=")
	if !ok || len(rest) < 10 {
		return time.Time{}, false
	}
	d, err := time.Parse("2006-01-02", rest[:10])
	return d, err == nil
}

// manifest reads e's manifest from the store and checks it names the file as loaded.
func (p *Purger) manifest(ctx context.Context, e warehouse.HistoryEntry) (*landing.Manifest, error) {
	mk := landing.ManifestKey(e.FileKey)
	data, err := readAll(ctx, p.Store, mk)
	if err != nil {
		return nil, archiveErr(e, "manifest %s: %v", mk, err)
	}
	m, err := landing.ParseManifest(data)
	if err != nil {
		return nil, archiveErr(e, "manifest %s: %v", mk, err)
	}
	if m.DataKey != e.FileKey || m.DataSHA256 != e.DataSHA256 {
		return nil, archiveErr(e, "manifest %s names %s sha256 %s, the warehouse loaded sha256 %s", mk, m.DataKey, short(m.DataSHA256), short(e.DataSHA256))
	}
	return m, nil
}

// Verify checks that c's data object is in the archive with the sha256 it was loaded
// with (its manifest was checked by Candidates).
func (p *Purger) Verify(ctx context.Context, c Candidate) error {
	r, err := p.Store.Get(ctx, c.FileKey)
	if err != nil {
		if errors.Is(err, fs.ErrNotExist) {
			return archiveErr(c.HistoryEntry, "object missing")
		}
		return archiveErr(c.HistoryEntry, "read: %v", err)
	}
	defer r.Close()
	h := sha256.New()
	if _, err := io.Copy(h, r); err != nil {
		return archiveErr(c.HistoryEntry, "read: %v", err)
	}
	if got := hex.EncodeToString(h.Sum(nil)); got != c.DataSHA256 {
		return archiveErr(c.HistoryEntry, "sha256 %s, loaded as %s (the object changed after its load)", short(got), short(c.DataSHA256))
	}
	return nil
}

func archiveErr(e warehouse.HistoryEntry, format string, args ...any) error {
	return fmt.Errorf("%s (table %s, shard %s): %w: %s", e.FileKey, e.Table, e.Shard, ErrArchive, fmt.Sprintf(format, args...))
}

func short(sha string) string {
	if len(sha) > 12 {
		return sha[:12]
	}
	return sha
}

func readAll(ctx context.Context, s Store, key string) ([]byte, error) {
	r, err := s.Get(ctx, key)
	if err != nil {
		return nil, err
	}
	defer r.Close()
	return io.ReadAll(r)
}

// Run verifies every file past the hot period and, when all are verified and dry is
// false, purges them. Archive failures are returned joined, each naming its file, and
// nothing is purged.
func (p *Purger) Run(ctx context.Context, dry bool) (PurgeSummary, []Candidate, error) {
	var sum PurgeSummary
	if err := p.EnsureLog(ctx); err != nil {
		return sum, nil, fmt.Errorf("purge: create %s.%s: %w", p.Raw, PurgeLog, err)
	}
	cands, already, problems, err := p.Candidates(ctx)
	if err != nil {
		return sum, nil, fmt.Errorf("purge: %w", err)
	}
	sum.Candidates, sum.Already = len(cands)+len(problems), already
	for _, c := range cands {
		if err := p.Verify(ctx, c); err != nil {
			problems = append(problems, err)
			continue
		}
		sum.Verified++
	}
	if len(problems) > 0 {
		sort.Slice(problems, func(i, j int) bool { return problems[i].Error() < problems[j].Error() })
		return sum, cands, fmt.Errorf("purge blocked: %d of %d file(s) past the hot period are not verified in the archive, nothing purged: %w",
			len(problems), sum.Candidates, errors.Join(problems...))
	}
	if dry {
		return sum, cands, nil
	}
	tables := map[string]registry.Table{}
	for _, t := range p.Registry.Tables {
		tables[t.Name] = t
	}
	for _, c := range cands {
		del, kept, err := p.purgeFile(ctx, tables[c.Table], c)
		if err != nil {
			return sum, cands, fmt.Errorf("purge %s (table %s, shard %s): %w", c.FileKey, c.Table, c.Shard, err)
		}
		sum.Purged++
		sum.Deleted += del
		sum.Kept += kept
		p.log().Info("purged", "file", c.FileKey, "table", c.Table, "shard", c.Shard, "rows_deleted", del, "rows_kept", kept)
	}
	return sum, cands, nil
}

// purgeFile deletes c's rows below their key's highest version on the shard and logs
// the file, in one transaction.
func (p *Purger) purgeFile(ctx context.Context, t registry.Table, c Candidate) (int64, int64, error) {
	tx, err := p.Warehouse.DB().BeginTx(ctx, nil)
	if err != nil {
		return 0, 0, err
	}
	defer tx.Rollback()
	count := func() (int64, error) {
		var n int64
		err := tx.QueryRowContext(ctx, fmt.Sprintf("SELECT count(*) FROM %s.%s WHERE %s = ?", p.Raw, t.Name, warehouse.ColFile), c.FileKey).Scan(&n)
		return n, err
	}
	before, err := count()
	if err != nil {
		return 0, 0, fmt.Errorf("count: %w", err)
	}
	if _, err := tx.ExecContext(ctx, DeleteSQL(p.Raw, t), c.FileKey, c.FileKey); err != nil {
		return 0, 0, fmt.Errorf("delete: %w", err)
	}
	kept, err := count() // counted, not RowsAffected: DuckDB's is not the rows a DELETE ... USING removed
	if err != nil {
		return 0, 0, fmt.Errorf("count: %w", err)
	}
	del := before - kept
	if err := p.failpoint("deleted", c.FileKey); err != nil {
		return 0, 0, err
	}
	if _, err := tx.ExecContext(ctx, fmt.Sprintf("DELETE FROM %s.%s WHERE file_key = ?", p.Raw, PurgeLog), c.FileKey); err != nil {
		return 0, 0, fmt.Errorf("log: %w", err)
	}
	if _, err := tx.ExecContext(ctx, fmt.Sprintf("INSERT INTO %s.%s VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)", p.Raw, PurgeLog),
		c.FileKey, c.Table, c.Shard, c.DataSHA256, c.Rows, del, kept, c.Newest.UTC(), c.Cutoff.UTC(), p.Now.UTC()); err != nil {
		return 0, 0, fmt.Errorf("log: %w", err)
	}
	if err := tx.Commit(); err != nil {
		return 0, 0, err
	}
	return del, kept, p.failpoint("committed", c.FileKey)
}

func (p *Purger) failpoint(step, key string) error {
	if p.Failpoint == nil {
		return nil
	}
	return p.Failpoint(step, key)
}

// DeleteSQL deletes the rows of one file (both ? are its key) of raw.<t> whose version
// is below the highest version of their key on their shard, over all of raw.<t>. A row
// without a version is kept. The same text runs on DuckDB and Snowflake.
func DeleteSQL(raw string, t registry.Table) string {
	keys := t.PrimaryKey
	var sel, on, onM []string
	for _, k := range keys {
		sel = append(sel, "x."+k)
		on = append(on, fmt.Sprintf("x.%s = f.%s", k, k))
		onM = append(onM, fmt.Sprintf("%s.%s.%s = m.%s", raw, t.Name, k, k))
	}
	return fmt.Sprintf(`DELETE FROM %[1]s.%[2]s USING (
    SELECT %[3]s, x.%[4]s, max(x.%[5]s) AS max_version
    FROM %[1]s.%[2]s AS x
    INNER JOIN (SELECT DISTINCT %[6]s FROM %[1]s.%[2]s WHERE %[7]s = ?) AS f ON %[8]s
    GROUP BY %[3]s, x.%[4]s
) AS m
WHERE %[1]s.%[2]s.%[7]s = ? AND %[9]s AND %[1]s.%[2]s.%[4]s = m.%[4]s AND %[1]s.%[2]s.%[5]s < m.max_version`,
		raw, t.Name, strings.Join(sel, ", "), landing.ColShard, t.Version, strings.Join(keys, ", "), warehouse.ColFile,
		strings.Join(on, " AND "), strings.Join(onM, " AND "))
}

package dq

import (
	"context"
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/shopsphere/shardflow/internal/extract"
	"github.com/shopsphere/shardflow/internal/fence"
	"github.com/shopsphere/shardflow/internal/registry"
	"github.com/shopsphere/shardflow/internal/window"
)

// Pair is one row version: the global key's text form (columns joined by '|') and its
// row_version. It is what the row checksum is computed over.
type Pair struct {
	Key     string
	Version int64
}

// Source reads one shard for dq. Every query goes through an index: the window queries
// through <table>_watermark_idx, key lookups through the primary key. It runs all window
// queries of one call in one REPEATABLE READ snapshot.
type Source struct {
	Registry *registry.Registry
	Shard    string
	Conn     *pgx.Conn

	view *registry.ShardView
}

// View is the shard's ownership view: the registry's, amended by the shard's fence
// rows for a pending move (decisions/0017). Read once per Source.
func (s *Source) View(ctx context.Context) (*registry.ShardView, error) {
	if s.view != nil {
		return s.view, nil
	}
	v, _, err := fence.View(ctx, s.Conn, s.Registry, s.Shard)
	if err != nil {
		return nil, fmt.Errorf("shard %s: %w", s.Shard, err)
	}
	s.view = v
	return v, nil
}

func (s *Source) queries(ctx context.Context, table string) (*extract.Queries, registry.Table, error) {
	t, ok := s.Registry.Table(table)
	if !ok {
		return nil, t, fmt.Errorf("table %s is not in shards.yaml", table)
	}
	v, err := s.View(ctx)
	if err != nil {
		return nil, t, err
	}
	q, err := extract.NewQueries(t, v.Intervals(), nil) // checksums and pairs only: no column is selected
	return q, t, err
}

// WindowChecksum returns the count and checksum of the rows of w this shard owned at
// their instant.
func (s *Source) WindowChecksum(ctx context.Context, table string, w window.Window) (int64, string, error) {
	q, _, err := s.queries(ctx, table)
	if err != nil {
		return 0, "", err
	}
	var n int64
	var sum string
	if err := s.Conn.QueryRow(ctx, q.Checksum, w.Start, w.End).Scan(&n, &sum); err != nil {
		return 0, "", fmt.Errorf("source checksum of shard %s table %s window %s: %w", s.Shard, table, w, err)
	}
	return n, sum, nil
}

// WindowPairs returns the (key, version) pairs of the same rows, sorted by key.
func (s *Source) WindowPairs(ctx context.Context, table string, w window.Window) ([]Pair, error) {
	q, _, err := s.queries(ctx, table)
	if err != nil {
		return nil, err
	}
	rows, err := s.Conn.Query(ctx, q.Pairs, w.Start, w.End)
	if err != nil {
		return nil, fmt.Errorf("source pairs of shard %s table %s window %s: %w", s.Shard, table, w, err)
	}
	out, err := pgx.CollectRows(rows, func(r pgx.CollectableRow) (Pair, error) {
		var p Pair
		err := r.Scan(&p.Key, &p.Version)
		return p, err
	})
	if err != nil {
		return nil, fmt.Errorf("source pairs of shard %s table %s window %s: %w", s.Shard, table, w, err)
	}
	return out, nil
}

// lookupChunk bounds the keys of one look-up query: the planner estimates an unnest of a
// parameter array at 100 rows whatever its length, so it picks an index nested loop over
// the primary key; chunks keep each query's real size near that.
const lookupChunk = 500

// CurrentVersions looks keys up by primary key and returns each key's current version
// and watermark; a key absent from the result is gone from the shard (hard-deleted).
func (s *Source) CurrentVersions(ctx context.Context, table string, keys []string) (map[string]Current, error) {
	out := map[string]Current{}
	for len(keys) > 0 {
		n := min(len(keys), lookupChunk)
		if err := s.currentVersions(ctx, table, keys[:n], out); err != nil {
			return nil, err
		}
		keys = keys[n:]
	}
	return out, nil
}

func (s *Source) currentVersions(ctx context.Context, table string, keys []string, out map[string]Current) error {
	_, t, err := s.queries(ctx, table)
	if err != nil {
		return err
	}
	cols := make([][]string, len(t.PrimaryKey))
	for _, k := range keys {
		parts := strings.Split(k, "|")
		if len(parts) != len(cols) {
			return fmt.Errorf("key %q does not have %d parts", k, len(cols))
		}
		for i := range parts {
			cols[i] = append(cols[i], parts[i])
		}
	}
	if len(keys) == 0 {
		return nil
	}
	args := make([]any, len(cols))
	for i := range cols {
		args[i] = cols[i]
	}
	sql := lookupSQL(t)
	rows, err := s.Conn.Query(ctx, sql, args...)
	if err != nil {
		return fmt.Errorf("source key lookup on shard %s table %s: %w", s.Shard, table, err)
	}
	defer rows.Close()
	for rows.Next() {
		var k string
		var c Current
		if err := rows.Scan(&k, &c.Version, &c.Watermark); err != nil {
			return fmt.Errorf("source key lookup on shard %s table %s: %w", s.Shard, table, err)
		}
		out[k] = c
	}
	return rows.Err()
}

// lookupSQL selects (key text, version, watermark) of the keys given as one array
// parameter per key column, joined on the primary key.
func lookupSQL(t registry.Table) string {
	var unnest, on, text, names []string
	for i, name := range t.PrimaryKey {
		c, _ := t.Column(name)
		typ := map[string]string{"uuid": "uuid", "integer": "int", "bigint": "bigint"}[c.Type]
		if typ == "" {
			typ = "text"
		}
		unnest = append(unnest, fmt.Sprintf("$%d::%s[]", i+1, typ))
		on = append(on, fmt.Sprintf("t.%s = k.c%d", pgx.Identifier{name}.Sanitize(), i))
		text = append(text, fmt.Sprintf("t.%s::text", pgx.Identifier{name}.Sanitize()))
		names = append(names, "c"+strconv.Itoa(i))
	}
	return fmt.Sprintf("SELECT %s, t.%s, t.%s FROM unnest(%s) AS k(%s) JOIN %s t ON %s",
		strings.Join(text, " || '|' || "), pgx.Identifier{t.Version}.Sanitize(), pgx.Identifier{t.Watermark}.Sanitize(),
		strings.Join(unnest, ", "), strings.Join(names, ", "), pgx.Identifier{t.Name}.Sanitize(), strings.Join(on, " AND "))
}

// maxWatermarkSQL is the newest watermark of a table (a backward scan of the watermark index).
func maxWatermarkSQL(t registry.Table) string {
	return fmt.Sprintf("SELECT max(%s) FROM %s", pgx.Identifier{t.Watermark}.Sanitize(), pgx.Identifier{t.Name}.Sanitize())
}

// Current is a key's current state on the source.
type Current struct {
	Version   int64
	Watermark time.Time
}

// UnownedRow is a row this shard did not own at its instant.
type UnownedRow struct {
	Key     string
	Version int64
	Bucket  int
	At      time.Time
}

// MaxUnowned bounds the unowned rows one window query returns; the check reports when
// a window has more.
const MaxUnowned = 10000

// Unowned returns the rows of w that this shard did not own at their instant, in
// watermark order, at most MaxUnowned+1.
func (s *Source) Unowned(ctx context.Context, table string, w window.Window) ([]UnownedRow, error) {
	q, _, err := s.queries(ctx, table)
	if err != nil {
		return nil, err
	}
	rows, err := s.Conn.Query(ctx, q.Unowned, w.Start, w.End, MaxUnowned+1)
	if err != nil {
		return nil, fmt.Errorf("unowned rows of shard %s table %s window %s: %w", s.Shard, table, w, err)
	}
	out, err := pgx.CollectRows(rows, func(r pgx.CollectableRow) (UnownedRow, error) {
		var u UnownedRow
		var b int32
		err := r.Scan(&u.Key, &u.Version, &b, &u.At)
		u.Bucket = int(b)
		return u, err
	})
	if err != nil {
		return nil, fmt.Errorf("unowned rows of shard %s table %s window %s: %w", s.Shard, table, w, err)
	}
	return out, nil
}

// MaxWatermark returns the newest watermark of the table (a backward scan of the
// watermark index), or the zero time for an empty table.
func (s *Source) MaxWatermark(ctx context.Context, table string) (time.Time, error) {
	t, ok := s.Registry.Table(table)
	if !ok {
		return time.Time{}, fmt.Errorf("table %s is not in shards.yaml", table)
	}
	var m *time.Time
	if err := s.Conn.QueryRow(ctx, maxWatermarkSQL(t)).Scan(&m); err != nil {
		return time.Time{}, fmt.Errorf("max watermark of shard %s table %s: %w", s.Shard, table, err)
	}
	if m == nil {
		return time.Time{}, nil
	}
	return *m, nil
}

// UnownedNow counts, per bucket range this shard does not own now, the rows it holds.
// There is no index on bucket, so this is a sequential scan of the table: run it off
// peak (or on a replica) after a move's cleanup, never on the extract schedule.
func (s *Source) UnownedNow(ctx context.Context, table string) (map[int]int64, error) {
	t, ok := s.Registry.Table(table)
	if !ok {
		return nil, fmt.Errorf("table %s is not in shards.yaml", table)
	}
	v, err := s.View(ctx)
	if err != nil {
		return nil, err
	}
	owned := v.OwnedAt(time.Now())
	var conds []string
	for _, r := range owned {
		conds = append(conds, fmt.Sprintf("bucket BETWEEN %d AND %d", r.Lo, r.Hi))
	}
	where := "true"
	if len(conds) > 0 {
		where = "NOT (" + strings.Join(conds, " OR ") + ")"
	}
	rows, err := s.Conn.Query(ctx, fmt.Sprintf("SELECT bucket, count(*) FROM %s WHERE %s GROUP BY bucket", pgx.Identifier{t.Name}.Sanitize(), where))
	if err != nil {
		return nil, fmt.Errorf("unowned-now scan of shard %s table %s: %w", s.Shard, table, err)
	}
	defer rows.Close()
	out := map[int]int64{}
	for rows.Next() {
		var b int32
		var n int64
		if err := rows.Scan(&b, &n); err != nil {
			return nil, err
		}
		out[int(b)] = n
	}
	return out, rows.Err()
}

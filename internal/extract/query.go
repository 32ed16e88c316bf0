package extract

import (
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/shopsphere/shardflow/internal/landing"
	"github.com/shopsphere/shardflow/internal/registry"
)

// Queries are the SQL statements that read one table of one shard. Every statement
// reads through the table's watermark index (<table>_watermark_idx on (updated_at, pk)):
// its only range condition is on updated_at and its only order is (updated_at, pk).
type Queries struct {
	Table registry.Table

	// Page reads one keyset page of landed columns. Parameters: $1 window start,
	// $2 window end, $3 page size, then the last (watermark, pk...) seen. The first
	// page passes FirstAfter.
	Page string

	// Checksum returns (count, checksum) of the rows of [$1, $2) that this shard owned
	// at their instant, with the ownership filter in SQL (a VALUES list of the shard's
	// ownership intervals). It is the source side of extract's self-check and of dq.
	Checksum string

	// Pairs returns (key text, row_version) of the same rows as Checksum, ordered by
	// key text: what dq compares when the checksums differ.
	Pairs string

	// Unowned returns (key text, row_version, bucket, watermark) of the rows of
	// [$1, $2) this shard did NOT own at their instant, in watermark order, at most $3.
	Unowned string

	cols   []registry.Column // landed columns, in SELECT order
	keyIdx []int             // positions of the primary key columns in cols
	wmIdx  int               // position of the watermark
}

// NewQueries builds the statements for table t on shard, with the ownership
// intervals of that shard (registry.ShardIntervals). The page query selects the absent
// columns (rolling-out columns the shard lacks yet, Schema.Absent) as typed NULLs.
func NewQueries(t registry.Table, intervals []registry.Interval, absent []string) (*Queries, error) {
	q := &Queries{Table: t, cols: t.Landed()}
	// the columns the statements and the row pipeline rely on (landing.Required)
	pos, err := landing.Required(t)
	if err != nil {
		return nil, err
	}
	q.keyIdx, q.wmIdx = pos[:len(t.PrimaryKey)], pos[len(t.PrimaryKey)]

	tbl := ident(t.Name)
	wm := ident(t.Watermark)
	order := []string{wm}
	for _, k := range t.PrimaryKey {
		order = append(order, ident(k))
	}
	sel := make([]string, len(q.cols))
	for i, c := range q.cols {
		sel[i] = ident(c.Name)
		if slices.Contains(absent, c.Name) {
			sel[i] = "NULL::" + c.Type + " AS " + ident(c.Name)
		}
	}
	params := make([]string, len(order))
	for i := range order {
		params[i] = fmt.Sprintf("$%d", i+4)
	}
	q.Page = fmt.Sprintf("SELECT %s FROM %s WHERE %s >= $1 AND %s < $2 AND (%s) > (%s) ORDER BY %s LIMIT $3",
		strings.Join(sel, ", "), tbl, wm, wm, strings.Join(order, ", "), strings.Join(params, ", "), strings.Join(order, ", "))

	keys := make([]string, len(t.PrimaryKey))
	for i, k := range t.PrimaryKey {
		keys[i] = ident(k)
	}
	cnt, sum := landing.ChecksumSQL(landing.Postgres, keys, ident(t.Version))
	from := fmt.Sprintf("%s t JOIN (VALUES %s) AS own(lo, hi, vfrom, vto) ON t.%s BETWEEN own.lo AND own.hi AND t.%s >= own.vfrom AND t.%s < own.vto WHERE t.%s >= $1 AND t.%s < $2",
		tbl, ownershipValues(intervals), ident(landing.ColBucket), wm, wm, wm, wm)
	q.Checksum = fmt.Sprintf("SELECT %s, %s FROM %s", cnt, sum, from)
	keyText := make([]string, len(keys))
	for i, k := range keys {
		keyText[i] = "t." + k + "::text"
	}
	q.Pairs = fmt.Sprintf("SELECT %s AS key_text, t.%s FROM %s ORDER BY 1", strings.Join(keyText, " || '|' || "), ident(t.Version), from)
	q.Unowned = fmt.Sprintf("SELECT %s, t.%s, t.%s, t.%s FROM %s t WHERE t.%s >= $1 AND t.%s < $2 AND NOT EXISTS (SELECT 1 FROM (VALUES %s) AS own(lo, hi, vfrom, vto) WHERE t.%s BETWEEN own.lo AND own.hi AND t.%s >= own.vfrom AND t.%s < own.vto) ORDER BY t.%s LIMIT $3",
		strings.Join(keyText, " || '|' || "), ident(t.Version), ident(landing.ColBucket), wm, tbl, wm, wm, ownershipValues(intervals), ident(landing.ColBucket), wm, wm, wm)
	return q, nil
}

// Columns are the landed columns the page query selects, in order.
func (q *Queries) Columns() []registry.Column { return q.cols }

// FirstAfter is the keyset position before every row of a window starting at t0:
// (t0 − 1µs, the smallest value of each key column). Every row with watermark >= t0
// sorts after it.
func (q *Queries) FirstAfter(t0 time.Time) []any {
	out := []any{t0.Add(-time.Microsecond)}
	for _, i := range q.keyIdx {
		switch q.cols[i].Type {
		case "uuid":
			out = append(out, "00000000-0000-0000-0000-000000000000")
		case "integer":
			out = append(out, int32(-1<<31))
		case "bigint":
			out = append(out, int64(-1<<63))
		default: // text and the rest: the empty string sorts first in every collation
			out = append(out, "")
		}
	}
	return out
}

// ownershipValues renders intervals as VALUES rows (lo, hi, valid_from, valid_to);
// an open bound is ±infinity. An empty list renders a row that matches nothing.
func ownershipValues(ivs []registry.Interval) string {
	if len(ivs) == 0 {
		return "(-1, -2, 'infinity'::timestamptz, '-infinity'::timestamptz)"
	}
	rows := make([]string, len(ivs))
	for i, iv := range ivs {
		from, to := "'-infinity'::timestamptz", "'infinity'::timestamptz"
		if !iv.From.IsZero() {
			from = "'" + iv.From.UTC().Format(time.RFC3339Nano) + "'::timestamptz"
		}
		if !iv.To.IsZero() {
			to = "'" + iv.To.UTC().Format(time.RFC3339Nano) + "'::timestamptz"
		}
		rows[i] = fmt.Sprintf("(%d, %d, %s, %s)", iv.Lo, iv.Hi, from, to)
	}
	return strings.Join(rows, ", ")
}

func ident(s string) string { return pgx.Identifier{s}.Sanitize() }

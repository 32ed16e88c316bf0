package dq

import (
	"context"
	"errors"
	"fmt"
	"sort"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/shopsphere/shardflow/internal/fence"
	"github.com/shopsphere/shardflow/internal/registry"
)

// CheckMoveAudit compares a move's two shards around its markers.
const CheckMoveAudit = "move_audit"

// AuditMargin is how far before the earlier and after the later marker the move audit
// reads the moved buckets' rows (through the watermark index).
const AuditMargin = time.Hour

// movedRow is one row of a moved bucket as the audit reads it.
type movedRow struct {
	key     string
	version int64
	bucket  int
	at      time.Time
}

// MovesIn returns the moves whose cutover (the source's marker, or the hand-recorded
// instant) falls in [from, to): the ones the hourly DAG audits with that window.
func MovesIn(reg *registry.Registry, from, to time.Time) []registry.Move {
	var out []registry.Move
	for _, m := range reg.Moves {
		if !m.Pending() && !m.Instant().Before(from) && m.Instant().Before(to) {
			out = append(out, m)
		}
	}
	return out
}

// MoveAudit checks one recorded move (docs/decisions/0017): that shards.yaml's markers
// are the ones the shards wrote at the fence, and, per table, over the moved buckets'
// rows within AuditMargin of the markers on both shards, that
//
//   - no row of the source is stamped at or after its marker (a write after the fence,
//     or a marker recorded too early: the version is dropped from the owned history,
//     and lost when the target owns nothing newer),
//   - every row the target does not own (a copy) is a version the source owns, the
//     same or newer (a copy the ownership filter drops that nothing else explains is
//     lost: a marker recorded too late, or a change the copy never carried),
//   - no version is owned on both shards (a marker recorded too early: counted twice),
//   - no key's newest owned version on the target is older than the source's.
//
// It reads the source's live rows while the source still holds them, and the rows the
// source landed in the warehouse after the move's cleanup. One result per table, plus
// one for the markers; each names the move, the buckets and the rows.
func MoveAudit(ctx context.Context, reg *registry.Registry, m registry.Move, src, dst SourceConn, wh *Warehouse) []Result {
	name := fmt.Sprintf("move %d (%s → %s, buckets %s)", m.Epoch, m.From, m.To, registry.FormatRanges(m.Buckets))
	res := func(table string, st Status, format string, args ...any) Result {
		return Result{Check: CheckMoveAudit, Shard: m.To, Table: table, Status: st, Detail: name + ": " + fmt.Sprintf(format, args...)}
	}
	if src.Err != nil || dst.Err != nil {
		return []Result{res("", Fail, "a shard is unreachable: %v", errors.Join(src.Err, dst.Err))}
	}
	var out []Result
	cleaned := false
	if m.Fence != nil {
		r, c := auditMarkers(ctx, m, src.Conn, dst.Conn)
		r.Detail = name + ": " + r.Detail
		out = append(out, r)
		cleaned = c
	} else {
		out = append(out, res("", Warn, "recorded by hand with one cutover %s: each shard is judged by that instant on its own clock; the rows below are checked around it", m.Cutover.Format(time.RFC3339Nano)))
	}
	lo, hi := minT(m.SourceEnd(), m.TargetBegin()).Add(-AuditMargin), maxT(m.SourceEnd(), m.TargetBegin()).Add(AuditMargin)
	for _, t := range reg.Tables {
		srcRows, err := movedRows(ctx, src.Conn, t, m.Buckets, lo, hi)
		if err == nil && cleaned {
			if wh == nil {
				err = errors.New("the source was cleaned up: the audit needs the warehouse")
			} else {
				srcRows, err = wh.landedMovedRows(ctx, t, m.From, m.Buckets, lo, hi)
			}
		}
		if err != nil {
			out = append(out, res(t.Name, Fail, "read %s: %v", m.From, err))
			continue
		}
		dstRows, err := movedRows(ctx, dst.Conn, t, m.Buckets, lo, hi)
		if err != nil {
			out = append(out, res(t.Name, Fail, "read %s: %v", m.To, err))
			continue
		}
		out = append(out, judgeMove(reg, m, t.Name, srcRows, dstRows, name))
	}
	return out
}

// auditMarkers compares shards.yaml's fence with the fence rows of both shards, and
// tells whether the source was cleaned up.
func auditMarkers(ctx context.Context, m registry.Move, src, dst *pgx.Conn) (Result, bool) {
	r := Result{Check: CheckMoveAudit, Shard: m.To, Status: Pass}
	var bad []string
	cleaned := false
	for _, side := range []struct {
		shard string
		conn  *pgx.Conn
		role  registry.FenceRole
		want  registry.Marker
	}{{m.From, src, registry.RoleFrom, m.Fence.From}, {m.To, dst, registry.RoleTo, m.Fence.To}} {
		rows, err := fence.Read(ctx, side.conn)
		if err != nil {
			r.Status, r.Detail = Fail, fmt.Sprintf("read %s's fence: %v", side.shard, err)
			return r, false
		}
		found := false
		for _, f := range rows {
			if f.Epoch != m.Epoch || f.Role != side.role {
				continue
			}
			found = true
			if !f.MarkerAt.Equal(side.want.At) || f.MarkerLSN != side.want.LSN {
				bad = append(bad, fmt.Sprintf("%s's marker is %s at %s, shards.yaml says %s at %s", side.shard,
					f.MarkerAt.Format(time.RFC3339Nano), f.MarkerLSN, side.want.At.Format(time.RFC3339Nano), side.want.LSN))
				break
			}
			if !f.CleanedAt.IsZero() {
				cleaned = true
			}
		}
		if !found {
			bad = append(bad, fmt.Sprintf("%s has no fence row of the move", side.shard))
		}
	}
	if len(bad) > 0 {
		r.Status, r.Detail = Fail, "shards.yaml and the shards disagree: "+strings.Join(bad, "; ")
		return r, cleaned
	}
	r.Detail = fmt.Sprintf("markers agree: %s at %s (%s), %s at %s (%s), each on its own clock",
		m.From, m.Fence.From.At.Format(time.RFC3339Nano), m.Fence.From.LSN, m.To, m.Fence.To.At.Format(time.RFC3339Nano), m.Fence.To.LSN)
	return r, cleaned
}

// judgeMove applies the audit's rules to the moved buckets' rows of both shards.
func judgeMove(reg *registry.Registry, m registry.Move, table string, srcRows, dstRows []movedRow, name string) Result {
	r := Result{Check: CheckMoveAudit, Shard: m.To, Table: table}
	type kv struct {
		key     string
		version int64
	}
	srcOwned, srcNewest := map[kv]bool{}, map[string]int64{}
	for _, x := range srcRows {
		if reg.Owns(m.From, x.bucket, x.at) {
			srcOwned[kv{x.key, x.version}] = true
			srcNewest[x.key] = max(srcNewest[x.key], x.version)
		}
	}
	dstNewest := map[string]int64{}
	for _, x := range dstRows {
		if reg.Owns(m.To, x.bucket, x.at) {
			dstNewest[x.key] = max(dstNewest[x.key], x.version)
		}
	}
	row := func(x movedRow) string {
		return fmt.Sprintf("%s v%d bucket %d at %s", x.key, x.version, x.bucket, x.at.Format(time.RFC3339Nano))
	}
	var late, dropped, twice, regress []string
	for _, x := range srcRows {
		if !reg.Owns(m.From, x.bucket, x.at) {
			what := "lost"
			if dstNewest[x.key] >= x.version {
				what = fmt.Sprintf("a newer v%d on %s", dstNewest[x.key], m.To)
			}
			late = append(late, row(x)+": "+what)
		}
	}
	for _, x := range dstRows {
		owned := reg.Owns(m.To, x.bucket, x.at)
		switch {
		case !owned && srcNewest[x.key] < x.version && dstNewest[x.key] < x.version:
			dropped = append(dropped, row(x))
		case owned && srcOwned[kv{x.key, x.version}]:
			twice = append(twice, row(x))
		}
	}
	for k, v := range dstNewest {
		if sv, ok := srcNewest[k]; ok && v < sv {
			regress = append(regress, fmt.Sprintf("%s v%d on %s < v%d on %s", k, v, m.To, sv, m.From))
		}
	}
	var problems []string
	report := func(what string, rows []string) {
		if len(rows) > 0 {
			sort.Strings(rows)
			problems = append(problems, fmt.Sprintf("%d %s (%s)", len(rows), what, strings.Join(first(rows), "; ")))
		}
	}
	report(fmt.Sprintf("rows of %s stamped at or after its marker, which the ownership filter drops from its history", m.From), late)
	report(fmt.Sprintf("rows of %s before its marker that no version %s owns explains: dropped by the ownership filter and held nowhere else", m.To, m.From), dropped)
	report("versions owned on both shards: counted twice", twice)
	report("keys whose newest owned version regresses across the move", regress)
	n := int64(len(srcRows) + len(dstRows))
	r.SourceCount = &n
	if len(problems) > 0 {
		r.Status = Fail
		r.Detail = name + ": " + strings.Join(problems, "; ")
		return r
	}
	r.Status = Pass
	r.Detail = fmt.Sprintf("%s: %d rows of %s and %d of %s within %s of the markers agree", name, len(srcRows), m.From, len(dstRows), m.To, AuditMargin)
	return r
}

// movedRows reads a shard's rows of the buckets with a watermark in [lo, hi), through
// the watermark index.
func movedRows(ctx context.Context, c *pgx.Conn, t registry.Table, buckets []registry.Range, lo, hi time.Time) ([]movedRow, error) {
	key := make([]string, len(t.PrimaryKey))
	for i, k := range t.PrimaryKey {
		key[i] = pgx.Identifier{k}.Sanitize() + "::text"
	}
	q := fmt.Sprintf("SELECT %s, %s, %s, %s FROM %s WHERE %s >= $1 AND %s < $2 AND %s",
		strings.Join(key, " || '|' || "), pgx.Identifier{t.Version}.Sanitize(), registry.BucketColumn, pgx.Identifier{t.Watermark}.Sanitize(),
		pgx.Identifier{t.Name}.Sanitize(), pgx.Identifier{t.Watermark}.Sanitize(), pgx.Identifier{t.Watermark}.Sanitize(), bucketsSQL(buckets))
	rows, err := c.Query(ctx, q, lo, hi)
	if err != nil {
		return nil, err
	}
	return pgx.CollectRows(rows, func(r pgx.CollectableRow) (movedRow, error) {
		var x movedRow
		var b int32
		err := r.Scan(&x.key, &x.version, &b, &x.at)
		x.bucket = int(b)
		return x, err
	})
}

// landedMovedRows reads the rows shard landed for the buckets with a watermark in
// [lo, hi): what the warehouse holds of a source after the move's cleanup.
func (w *Warehouse) landedMovedRows(ctx context.Context, t registry.Table, shard string, buckets []registry.Range, lo, hi time.Time) ([]movedRow, error) {
	q := fmt.Sprintf("SELECT DISTINCT %s, %s, %s, %s FROM %s WHERE _shard = '%s' AND _op <> 'd' AND %s >= %s AND %s < %s AND %s",
		w.keyText(t), t.Version, registry.BucketColumn, t.Watermark, w.table(t.Name), strings.ReplaceAll(shard, "'", "''"),
		t.Watermark, w.ts(lo), t.Watermark, w.ts(hi), bucketsSQL(buckets))
	rows, err := w.DB.QueryContext(ctx, q)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	var out []movedRow
	for rows.Next() {
		var x movedRow
		if err := rows.Scan(&x.key, &x.version, &x.bucket, &x.at); err != nil {
			return nil, err
		}
		out = append(out, x)
	}
	return out, rows.Err()
}

// LandedVersions returns, for each of the keys (key text) of table, the newest version
// shard landed in the warehouse (raw rows, any source): what a move's source held of a
// key before its cleanup. Keys it never landed are absent.
func (w *Warehouse) LandedVersions(ctx context.Context, table, shard string, keys []string) (map[string]int64, error) {
	t, ok := w.Registry.Table(table)
	if !ok {
		return nil, fmt.Errorf("table %s is not in shards.yaml", table)
	}
	out := map[string]int64{}
	for _, list := range literalLists(keys) {
		q := fmt.Sprintf("SELECT %s AS k, max(%s) FROM %s WHERE _shard = '%s' AND %s IN (%s) GROUP BY 1",
			w.keyText(t), t.Version, w.table(t.Name), strings.ReplaceAll(shard, "'", "''"), w.keyText(t), list)
		rows, err := w.DB.QueryContext(ctx, q)
		if err != nil {
			return nil, fmt.Errorf("landed versions of shard %s table %s: %w", shard, table, err)
		}
		for rows.Next() {
			var k string
			var v int64
			if err := rows.Scan(&k, &v); err != nil {
				rows.Close()
				return nil, err
			}
			out[k] = v
		}
		rows.Close()
		if err := rows.Err(); err != nil {
			return nil, err
		}
	}
	return out, nil
}

func bucketsSQL(rs []registry.Range) string {
	parts := make([]string, len(rs))
	for i, r := range rs {
		parts[i] = fmt.Sprintf("%s BETWEEN %d AND %d", registry.BucketColumn, r.Lo, r.Hi)
	}
	return "(" + strings.Join(parts, " OR ") + ")"
}

func minT(a, b time.Time) time.Time {
	if a.Before(b) {
		return a
	}
	return b
}

func maxT(a, b time.Time) time.Time {
	if a.After(b) {
		return a
	}
	return b
}

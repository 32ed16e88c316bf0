package move

import (
	"context"
	"fmt"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/shopsphere/shardflow/internal/exitcode"
	"github.com/shopsphere/shardflow/internal/fence"
	"github.com/shopsphere/shardflow/internal/registry"
)

// TableCheck is what verify found for one table.
type TableCheck struct {
	Table string
	// Source is the source's rows of the buckets (all written before its marker: the
	// rows the move copied). Same: on the target unchanged; Newer: changed on the
	// target since the switch; New: on the target only, written after its switch.
	Source, Same, Newer, New int64
	// Problems: a source row missing on the target, the same version with other
	// content, an older version on the target, or a target row from before its switch
	// that the source does not have. (A key hard-deleted on the target since the switch
	// shows as missing: the contract deletes softly, hard deletes are a move's cleanup.)
	Missing, Differ, Older, Stray int64
	Examples                      []string // keys, at most five
}

// OK reports whether the table moved whole.
func (c TableCheck) OK() bool { return c.Missing+c.Differ+c.Older+c.Stray == 0 }

// Verify compares, table by table, every row of the buckets on the source with the
// target (a merge of both in key order, one pass over each): each must be there with
// the same content or a newer version. On success the source's fence rows say
// verified, which cleanup requires. Read-only otherwise.
func (m *Mover) Verify(ctx context.Context) ([]TableCheck, error) {
	mv, err := m.check()
	if err != nil {
		return nil, err
	}
	src, dst, closeAll, err := m.both(ctx)
	if err != nil {
		return nil, err
	}
	defer closeAll()
	from, to, err := m.fenceRows(ctx, src, dst)
	if err != nil {
		return nil, err
	}
	if len(to) == 0 || to[0].State != fence.Owned || len(from) == 0 {
		return nil, usage(fmt.Errorf("move %d has not switched: run `shardctl move cutover %d` first", m.Epoch, m.Epoch))
	}
	if !from[0].CleanedAt.IsZero() {
		return nil, usage(fmt.Errorf("move %d was cleaned up on %s: nothing left to compare", m.Epoch, src.id))
	}
	m.say("move %d: %s → %s, buckets %s: verify", m.Epoch, mv.From, mv.To, registry.FormatRanges(mv.Buckets))
	if m.DryRun {
		m.step("compare every row of the buckets on %s with %s, table by table", src.id, dst.id)
		return nil, nil
	}
	var out []TableCheck
	ok := true
	for _, t := range tables(m.Registry) {
		c, err := m.compare(ctx, src, dst, t, to[0].MarkerAt)
		if err != nil {
			return nil, err
		}
		out = append(out, c)
		status := "ok"
		if !c.OK() {
			ok = false
			status = fmt.Sprintf("FAILED: %d missing, %d differ, %d older, %d stray (%s)", c.Missing, c.Differ, c.Older, c.Stray, strings.Join(c.Examples, ", "))
		}
		m.say("  %-12s %d source rows: %d same on %s, %d newer there, %d new there since the switch: %s", t.Name, c.Source, c.Same, dst.id, c.Newer, c.New, status)
	}
	if !ok {
		return out, exitcode.Errorf(exitcode.CheckFail, "move %d: %s does not hold every row of the buckets from %s; do not clean up (abort is no longer possible: investigate, then move again)", m.Epoch, dst.id, src.id)
	}
	if _, err := src.conn.Exec(ctx, "UPDATE "+fence.Table+" SET verified_at = clock_timestamp() WHERE epoch = $1 AND role = 'from'", m.Epoch); err != nil {
		return out, retry(fmt.Errorf("shard %s: %w", src.id, err))
	}
	m.fail("verify.done")
	return out, nil
}

// keyed is one row of a comparison stream.
type keyed struct {
	key     []any // primary key values (text for uuid and text, int64 otherwise)
	version int64
	hash    string
	at      time.Time
}

func (m *Mover) compare(ctx context.Context, src, dst *shard, t registry.Table, switchedAt time.Time) (TableCheck, error) {
	c := TableCheck{Table: t.Name}
	var sel, ord []string
	for _, k := range t.PrimaryKey {
		col, _ := t.Column(k)
		switch col.Type {
		case "uuid":
			sel, ord = append(sel, k+"::text"), append(ord, k)
		case "text":
			sel, ord = append(sel, k), append(ord, k+` COLLATE "C"`)
		default:
			sel, ord = append(sel, k+"::bigint"), append(ord, k)
		}
	}
	q := "SELECT " + strings.Join(sel, ", ") + ", " + t.Version + ", md5(x::text), " + t.Watermark +
		" FROM " + t.Name + " AS x WHERE " + bucketPredicate(m.move().Buckets) + " ORDER BY " + strings.Join(ord, ", ")
	open := func(s *shard) (pgx.Rows, error) {
		rows, err := s.conn.Query(ctx, q)
		if err != nil {
			return nil, retry(fmt.Errorf("shard %s: read %s: %w", s.id, t.Name, err))
		}
		return rows, nil
	}
	// two cursors at once need two connections: the target's runs on its own
	dstConn, err := pgx.ConnectConfig(ctx, dst.conn.Config())
	if err != nil {
		return c, retry(fmt.Errorf("connect shard %s: %w", dst.id, err))
	}
	defer dstConn.Close(context.WithoutCancel(ctx))
	if _, err := dstConn.Exec(ctx, "SET TimeZone = 'UTC'"); err != nil {
		return c, retry(err)
	}
	sr, err := open(src)
	if err != nil {
		return c, err
	}
	defer sr.Close()
	dr, err := open(&shard{id: dst.id, conn: dstConn})
	if err != nil {
		return c, err
	}
	defer dr.Close()
	next := func(rows pgx.Rows) (*keyed, error) {
		if !rows.Next() {
			return nil, rows.Err()
		}
		vals, err := rows.Values()
		if err != nil {
			return nil, err
		}
		n := len(t.PrimaryKey)
		k := &keyed{key: vals[:n]}
		k.version, _ = vals[n].(int64)
		k.hash, _ = vals[n+1].(string)
		k.at, _ = vals[n+2].(time.Time)
		return k, nil
	}
	example := func(k *keyed, what string) {
		if len(c.Examples) < 5 {
			c.Examples = append(c.Examples, fmt.Sprintf("%s %v", what, k.key))
		}
	}
	s, err := next(sr)
	if err != nil {
		return c, retry(err)
	}
	d, err := next(dr)
	if err != nil {
		return c, retry(err)
	}
	for s != nil || d != nil {
		switch cmp := compareKeys(s, d); {
		case cmp < 0: // on the source only
			c.Source++
			c.Missing++
			example(s, "missing")
			if s, err = next(sr); err != nil {
				return c, retry(err)
			}
		case cmp > 0: // on the target only
			if d.at.Before(switchedAt) {
				c.Stray++
				example(d, "stray")
			} else {
				c.New++
			}
			if d, err = next(dr); err != nil {
				return c, retry(err)
			}
		default:
			c.Source++
			switch {
			case d.version > s.version:
				c.Newer++
			case d.version < s.version:
				c.Older++
				example(s, "older")
			case d.hash == s.hash:
				c.Same++
			default:
				c.Differ++
				example(s, "differs")
			}
			if s, err = next(sr); err != nil {
				return c, retry(err)
			}
			if d, err = next(dr); err != nil {
				return c, retry(err)
			}
		}
	}
	return c, nil
}

// compareKeys orders two rows by key the way ORDER BY does (uuid text order is the
// uuid's byte order); a nil row sorts after every other.
func compareKeys(a, b *keyed) int {
	switch {
	case a == nil && b == nil:
		return 0
	case a == nil:
		return 1
	case b == nil:
		return -1
	}
	for i := range a.key {
		switch x := a.key[i].(type) {
		case string:
			y, _ := b.key[i].(string)
			if x != y {
				if x < y {
					return -1
				}
				return 1
			}
		case int64:
			y, _ := b.key[i].(int64)
			if x != y {
				if x < y {
					return -1
				}
				return 1
			}
		}
	}
	return 0
}

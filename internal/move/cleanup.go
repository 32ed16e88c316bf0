package move

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/shopsphere/shardflow/internal/exitcode"
	"github.com/shopsphere/shardflow/internal/fence"
	"github.com/shopsphere/shardflow/internal/registry"
)

// CleanupBatch is how many rows one cleanup statement deletes (one short transaction).
const CleanupBatch = 5000

// Cleanup deletes the moved rows from the source. It refuses, naming what is missing,
// until: the fence is in shards.yaml and equals the shards' markers; verify passed;
// every batch window of the source through its marker is extracted and loaded; CDC has
// landed the source's changes through its marker. Until then those rows exist nowhere
// else the pipeline can read them from: a cleanup run first would erase them.
// Deletes run in key order, CleanupBatch rows per transaction; killed, it resumes.
func (m *Mover) Cleanup(ctx context.Context) (map[string]int64, error) {
	mv, err := m.check()
	if err != nil {
		return nil, err
	}
	m.say("move %d: %s → %s, buckets %s: cleanup of %s", m.Epoch, mv.From, mv.To, registry.FormatRanges(mv.Buckets), mv.From)
	if mv.Pending() {
		return nil, usage(fmt.Errorf("move %d is not recorded in %s: cut over first, commit the fence and deploy it (the pipeline must judge %s by its marker before its rows go)", m.Epoch, m.Path, mv.From))
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
	if len(from) == 0 || len(to) == 0 || from[0].State != fence.Moved || to[0].State != fence.Owned {
		return nil, usage(fmt.Errorf("move %d has not switched on the shards: run `shardctl move cutover %d`", m.Epoch, m.Epoch))
	}
	if got := (registry.Fence{From: registry.Marker{At: from[0].MarkerAt, LSN: from[0].MarkerLSN}, To: registry.Marker{At: to[0].MarkerAt, LSN: to[0].MarkerLSN}}); got != *mv.Fence {
		return nil, exitcode.Errorf(exitcode.CheckFail, "move %d: %s's fence %+v differs from the shards' markers %+v: fix shards.yaml before anything is deleted", m.Epoch, m.Path, *mv.Fence, got)
	}
	if !from[0].CleanedAt.IsZero() {
		m.say("  cleaned up before, at %s", from[0].CleanedAt.Format(time.RFC3339))
		return map[string]int64{}, nil
	}
	if from[0].VerifiedAt.IsZero() {
		return nil, usage(fmt.Errorf("move %d is not verified: run `shardctl move verify %d` first", m.Epoch, m.Epoch))
	}
	if m.Gates == nil {
		return nil, usage(fmt.Errorf("move %d: cleanup needs the warehouse and Kafka to check the pipeline has landed %s through its marker", m.Epoch, src.id))
	}
	var waits []string
	for _, t := range tables(m.Registry) {
		ok, why, err := m.Gates.BatchLoaded(ctx, src.id, t, from[0].MarkerAt)
		if err != nil {
			return nil, err
		}
		if !ok {
			waits = append(waits, why)
		}
	}
	ok, cdcWhy, err := m.Gates.CDCConsumed(ctx, src.id, from[0].MarkerLSN)
	if err != nil {
		return nil, err
	}
	if !ok {
		waits = append(waits, cdcWhy)
	}
	if len(waits) > 0 {
		return nil, retry(fmt.Errorf("move %d: not yet: the pipeline still needs %s's rows: %s", m.Epoch, src.id, strings.Join(waits, "; ")))
	}
	m.say("  gates passed: batch windows through %s loaded; %s", from[0].MarkerAt.Format(time.RFC3339Nano), cdcWhy)
	deleted := map[string]int64{}
	if !m.step("delete the buckets' rows on %s, %d per transaction, in key order", src.id, CleanupBatch) {
		return deleted, nil
	}
	if _, err := src.conn.Exec(ctx, fmt.Sprintf("SET shardflow.cleanup_epoch = '%d'", m.Epoch)); err != nil {
		return nil, retry(fmt.Errorf("shard %s: %w", src.id, err))
	}
	for _, t := range tables(m.Registry) {
		n, err := m.deleteTable(ctx, src, t)
		deleted[t.Name] = n
		if err != nil {
			return deleted, err
		}
		m.say("    %-12s %d rows deleted", t.Name, n)
		m.fail("cleanup." + t.Name)
	}
	if _, err := src.conn.Exec(ctx, "UPDATE "+fence.Table+" SET cleaned_at = clock_timestamp() WHERE epoch = $1 AND role = 'from'", m.Epoch); err != nil {
		return deleted, retry(fmt.Errorf("shard %s: %w", src.id, err))
	}
	if _, err := src.conn.Exec(ctx, "DROP PUBLICATION IF EXISTS "+m.name()); err != nil {
		return deleted, retry(fmt.Errorf("shard %s: drop publication: %w", src.id, err))
	}
	m.say("move %d cleaned up; %s keeps its fence rows, so a stale writer is told the buckets moved", m.Epoch, src.id)
	return deleted, nil
}

// deleteTable deletes the move's rows of t on the source in key order, batch by batch.
func (m *Mover) deleteTable(ctx context.Context, s *shard, t registry.Table) (int64, error) {
	pk := strings.Join(t.PrimaryKey, ", ")
	var params, lastSel, desc, eq []string
	for i, k := range t.PrimaryKey {
		col, _ := t.Column(k)
		params = append(params, fmt.Sprintf("$%d::%s", i+1, col.Type))
		lastSel = append(lastSel, "last."+k+"::text")
		desc = append(desc, k+" DESC")
		eq = append(eq, "x."+k+" = d."+k)
	}
	build := func(after bool) string {
		cond := bucketPredicate(m.move().Buckets)
		if after {
			cond += " AND (" + pk + ") > (" + strings.Join(params, ", ") + ")"
		}
		return "WITH d AS (SELECT " + pk + " FROM " + t.Name + " WHERE " + cond + " ORDER BY " + pk + " LIMIT " + fmt.Sprint(CleanupBatch) + "), " +
			"del AS (DELETE FROM " + t.Name + " AS x USING d WHERE " + strings.Join(eq, " AND ") + " RETURNING 1), " +
			"last AS (SELECT " + pk + " FROM d ORDER BY " + strings.Join(desc, ", ") + " LIMIT 1) " +
			"SELECT (SELECT count(*) FROM del), " + strings.Join(lastSel, ", ") + " FROM last"
	}
	var total int64
	var last []any
	for {
		q := build(last != nil)
		dst := make([]any, 1+len(t.PrimaryKey))
		var n int64
		dst[0] = &n
		keys := make([]string, len(t.PrimaryKey))
		for i := range keys {
			dst[i+1] = &keys[i]
		}
		err := s.conn.QueryRow(ctx, q, last...).Scan(dst...)
		if err != nil {
			if errors.Is(err, pgx.ErrNoRows) {
				return total, nil
			}
			return total, retry(fmt.Errorf("shard %s: delete %s: %w", s.id, t.Name, err))
		}
		total += n
		last = last[:0]
		for _, k := range keys {
			last = append(last, k)
		}
	}
}

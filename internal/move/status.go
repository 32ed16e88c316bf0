package move

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/shopsphere/shardflow/internal/fence"
	"github.com/shopsphere/shardflow/internal/registry"
)

// Phase is where a move stands, read from its shards and shards.yaml.
type Phase string

// Phases, in order.
const (
	Declared Phase = "declared"  // pending in shards.yaml, nothing on the shards yet
	Copying  Phase = "copying"   // subscribed, copy not caught up
	CaughtUp Phase = "caught up" // ready to cut over
	Fencing  Phase = "fencing"   // the source's fence is up, the target does not own yet
	Switched Phase = "switched"  // the target owns; the fence is not in shards.yaml yet
	Recorded Phase = "recorded"  // the fence is in shards.yaml
	Verified Phase = "verified"  // every source row is on the target
	Cleaned  Phase = "cleaned"   // the source's moved rows are deleted
)

// copyState is the subscription's progress.
type copyState struct {
	Subscribed          bool
	Tables, TablesReady int
	LagBytes            int64 // the source's WAL not yet confirmed by the subscription; -1 no slot
}

func (m *Mover) copyState(ctx context.Context, src, dst *shard) (copyState, error) {
	var st copyState
	err := dst.conn.QueryRow(ctx, `SELECT count(*) > 0 FROM pg_subscription WHERE subname = $1`, m.name()).Scan(&st.Subscribed)
	if err != nil {
		return st, retry(fmt.Errorf("shard %s: %w", dst.id, err))
	}
	err = dst.conn.QueryRow(ctx, `SELECT count(*), count(*) FILTER (WHERE sr.srsubstate = 'r')
		FROM pg_subscription_rel sr JOIN pg_subscription s ON s.oid = sr.srsubid WHERE s.subname = $1`, m.name()).Scan(&st.Tables, &st.TablesReady)
	if err != nil {
		return st, retry(fmt.Errorf("shard %s: %w", dst.id, err))
	}
	err = src.conn.QueryRow(ctx, `SELECT coalesce(pg_wal_lsn_diff(pg_current_wal_lsn(), confirmed_flush_lsn), -1)::bigint
		FROM pg_replication_slots WHERE slot_name = $1`, m.name()).Scan(&st.LagBytes)
	if errors.Is(err, pgx.ErrNoRows) {
		st.LagBytes = -1
	} else if err != nil {
		return st, retry(fmt.Errorf("shard %s: %w", src.id, err))
	}
	return st, nil
}

// Status is a move's state on both shards and in shards.yaml.
type Status struct {
	Move       registry.Move
	Phase      Phase
	From, To   []fence.Row
	Copy       copyState
	Registered bool // the fence is in shards.yaml
}

// Status reads where the move stands.
func (m *Mover) Status(ctx context.Context) (*Status, error) {
	mv, err := m.check()
	if err != nil {
		return nil, err
	}
	src, dst, closeAll, err := m.both(ctx)
	if err != nil {
		return nil, err
	}
	defer closeAll()
	st := &Status{Move: mv, Registered: !mv.Pending()}
	if st.From, st.To, err = m.fenceRows(ctx, src, dst); err != nil {
		return nil, err
	}
	if st.Copy, err = m.copyState(ctx, src, dst); err != nil {
		return nil, err
	}
	st.Phase = phase(st)
	return st, nil
}

func phase(st *Status) Phase {
	from := func(f func(fence.Row) bool) bool { return len(st.From) > 0 && f(st.From[0]) }
	switch {
	case from(func(r fence.Row) bool { return !r.CleanedAt.IsZero() }):
		return Cleaned
	case from(func(r fence.Row) bool { return !r.VerifiedAt.IsZero() }) && st.Registered:
		return Verified
	case len(st.To) > 0 && st.To[0].State == fence.Owned && st.Registered:
		return Recorded
	case len(st.To) > 0 && st.To[0].State == fence.Owned:
		return Switched
	case len(st.From) > 0:
		return Fencing
	case st.Copy.Subscribed && st.Copy.Tables > 0 && st.Copy.TablesReady == st.Copy.Tables && st.Copy.LagBytes >= 0 && st.Copy.LagBytes < 1<<20:
		return CaughtUp
	case len(st.To) > 0:
		return Copying
	}
	return Declared
}

// Print writes the status for an operator.
func (st *Status) Print(m *Mover) {
	mv := st.Move
	m.say("move %d: %s → %s, buckets %s: %s", mv.Epoch, mv.From, mv.To, registry.FormatRanges(mv.Buckets), st.Phase)
	if st.Copy.Subscribed {
		m.say("  copy: %d of %d tables ready, %d bytes of %s's WAL not yet applied on %s", st.Copy.TablesReady, st.Copy.Tables, st.Copy.LagBytes, mv.From, mv.To)
	}
	for _, side := range []struct {
		shard string
		rows  []fence.Row
	}{{mv.From, st.From}, {mv.To, st.To}} {
		if len(side.rows) == 0 {
			continue
		}
		r := side.rows[0]
		line := fmt.Sprintf("  %s (%s): %s", side.shard, r.Role, r.State)
		if !r.MarkerAt.IsZero() {
			line += fmt.Sprintf(", marker %s (its clock) at WAL %s", r.MarkerAt.Format(time.RFC3339Nano), r.MarkerLSN)
		}
		if !r.VerifiedAt.IsZero() {
			line += ", verified " + r.VerifiedAt.Format(time.RFC3339)
		}
		if !r.CleanedAt.IsZero() {
			line += ", cleaned " + r.CleanedAt.Format(time.RFC3339)
		}
		m.say("%s", line)
	}
	next := map[Phase]string{
		Declared: "shardctl move start %d", Copying: "wait for the copy, then shardctl move cutover %d", CaughtUp: "shardctl move cutover %d",
		Fencing: "shardctl move cutover %d (resumes) or shardctl move abort %[1]d", Switched: "shardctl move cutover %d (records the fence)",
		Recorded: "commit shards.yaml, shardctl generate, deploy, then shardctl move verify %d",
		Verified: "shardctl move cleanup %d, once the pipeline has landed the source through its marker",
	}
	if n, ok := next[st.Phase]; ok {
		m.say("  next: "+n, mv.Epoch)
	}
}

package move

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/shopsphere/shardflow/internal/exitcode"
	"github.com/shopsphere/shardflow/internal/fence"
	"github.com/shopsphere/shardflow/internal/registry"
)

// CutoverResult is what a cutover did.
type CutoverResult struct {
	Fence registry.Fence
	// Held is how long application writes to the buckets were refused: from the
	// source's fence to the target's switch (zero when resumed past it).
	Held time.Duration
	// Recorded is true when this run wrote the fence into shards.yaml.
	Recorded bool
}

// Cutover switches the buckets from the source to the target (see the package doc) and
// records the fence in shards.yaml. Resumable at every step; before the target's switch
// a failure lifts the fence again, so the source owns on.
func (m *Mover) Cutover(ctx context.Context) (*CutoverResult, error) {
	mv, err := m.check()
	if err != nil {
		return nil, err
	}
	m.say("move %d: %s → %s, buckets %s: cutover", m.Epoch, mv.From, mv.To, registry.FormatRanges(mv.Buckets))
	src, dst, closeAll, err := m.both(ctx)
	if err != nil {
		return nil, err
	}
	defer closeAll()
	res := &CutoverResult{}

	to, err := m.rows(ctx, dst, registry.RoleTo)
	if err != nil {
		return nil, err
	}
	if len(to) == 0 {
		return nil, usage(fmt.Errorf("move %d was not started (no fence rows on %s): run `shardctl move start %d`", m.Epoch, dst.id, m.Epoch))
	}
	switched := to[0].State == fence.Owned
	if !switched {
		if err := m.switchOver(ctx, src, dst, res); err != nil {
			return nil, err
		}
		if m.DryRun {
			return res, nil
		}
	} else {
		m.say("  %s owns the buckets since %s (its clock): switched before", dst.id, to[0].MarkerAt.Format(time.RFC3339Nano))
	}
	// the source says moved (its writers reroute), once the target owns
	from, err := m.rows(ctx, src, registry.RoleFrom)
	if err != nil {
		return nil, err
	}
	if len(from) == 0 || from[0].MarkerAt.IsZero() {
		return nil, exitcode.Errorf(exitcode.Permanent, "move %d: %s owns the buckets but %s has no fence marker: the shards disagree; stop and inspect %s on both", m.Epoch, dst.id, src.id, fence.Table)
	}
	if from[0].State != fence.Moved && m.step("mark %s moved: its writers are told to write to %s", src.id, dst.id) {
		if _, err := src.conn.Exec(ctx, "UPDATE "+fence.Table+" SET state = 'moved', changed_at = clock_timestamp() WHERE epoch = $1 AND role = 'from'", m.Epoch); err != nil {
			return nil, retry(fmt.Errorf("shard %s: %w", src.id, err))
		}
		m.fail("cutover.moved")
	}
	to, err = m.rows(ctx, dst, registry.RoleTo)
	if err != nil {
		return nil, err
	}
	res.Fence = registry.Fence{
		From: registry.Marker{At: from[0].MarkerAt, LSN: from[0].MarkerLSN},
		To:   registry.Marker{At: to[0].MarkerAt, LSN: to[0].MarkerLSN},
	}
	if m.DryRun {
		return res, nil
	}
	rec, err := m.record(res.Fence)
	if err != nil {
		return nil, err
	}
	res.Recorded = rec
	return res, nil
}

// switchOver raises the source's fence, writes its marker, drains the copy past it,
// drops the subscription and writes the target's marker, resuming after whichever of
// these a killed run did last. A failure before the subscription is dropped lifts the
// fence again (the source owns on, the copy goes on streaming); after it, only going
// forward is consistent, so the fence stays and the error says to run cutover again.
func (m *Mover) switchOver(ctx context.Context, src, dst *shard, res *CutoverResult) error {
	mv := m.move()
	from, err := m.rows(ctx, src, registry.RoleFrom)
	if err != nil {
		return err
	}
	fenced := len(from) > 0
	if !fenced {
		if err := m.waitCaughtUp(ctx, src, dst); err != nil {
			return err
		}
		sk, err := skew(ctx, src.conn, dst.conn)
		if err != nil {
			return retry(fmt.Errorf("read the shards' clocks: %w", err))
		}
		if abs(sk) > dur(m.MaxSkew, defaultMaxSkew) {
			return usage(fmt.Errorf("move %d: the clocks of %s and %s differ by %s (more than %s): fix their time sync first", m.Epoch, src.id, dst.id, sk.Round(time.Microsecond), dur(m.MaxSkew, defaultMaxSkew)))
		}
	}
	if m.DryRun {
		m.step("fence %s: refuse writes to buckets %s (SF001, retryable), wait for in-flight writers", src.id, registry.FormatRanges(mv.Buckets))
		m.step("write %s's marker: its clock above every updated_at, and its WAL position", src.id)
		m.step("wait until %s's subscription applied everything before it, drop the subscription", dst.id)
		m.step("write %s's marker (its clock above every copied updated_at) and switch: it owns the buckets", dst.id)
		m.step("mark %s moved and record the fence in %s", src.id, m.Path)
		return nil
	}
	began := time.Now()
	undo := func(cause error) error {
		ctx := context.WithoutCancel(ctx)
		if _, err := src.conn.Exec(ctx, "DELETE FROM "+fence.Table+" WHERE epoch = $1 AND role = 'from'", m.Epoch); err != nil {
			return fmt.Errorf("%w; lifting the fence on %s failed too (%v): run `shardctl move cutover %d` again or `shardctl move abort %d`", cause, src.id, err, m.Epoch, m.Epoch)
		}
		m.say("  fence on %s lifted after %s: it owns the buckets on", src.id, time.Since(began).Round(time.Millisecond))
		return cause
	}
	if !fenced {
		m.step("fence %s: refuse writes to buckets %s (SF001, retryable)", src.id, registry.FormatRanges(mv.Buckets))
		if err := m.putFence(ctx, src, registry.RoleFrom, fence.Fenced, dst.id); err != nil {
			return err
		}
		m.fail("cutover.fence")
		if from, err = m.rows(ctx, src, registry.RoleFrom); err != nil {
			return undo(err)
		}
	} else {
		m.say("  %s is fenced already (by a run before this one)", src.id)
	}
	if from[0].MarkerAt.IsZero() {
		if err := m.waitInFlight(ctx, src); err != nil {
			return undo(err)
		}
		m.step("write %s's marker", src.id)
		at, lsn, err := m.marker(ctx, src, "from")
		if err != nil {
			return undo(err)
		}
		m.say("    %s: %s (its clock), WAL %s", src.id, at.Format(time.RFC3339Nano), lsn)
		m.fail("cutover.marker-from")
		if from, err = m.rows(ctx, src, registry.RoleFrom); err != nil {
			return undo(err)
		}
	}
	st, err := m.copyState(ctx, src, dst)
	if err != nil {
		return err
	}
	if st.Subscribed {
		if err := m.waitDrained(ctx, src, dst, from[0].MarkerLSN); err != nil {
			return undo(err)
		}
	}
	// dropped only once drained: a run that finds no subscription drained before it
	m.step("drop the subscription on %s (nothing more arrives from %s)", dst.id, src.id)
	if err := m.dropSubscription(ctx, src, dst); err != nil {
		return retry(fmt.Errorf("move %d: drop the copy: %w (the fence stays up: run `shardctl move cutover %d` again)", m.Epoch, err, m.Epoch))
	}
	m.fail("cutover.unsubscribed")
	m.step("switch: write %s's marker; it owns buckets %s from it", dst.id, registry.FormatRanges(mv.Buckets))
	at, lsn, err := m.marker(ctx, dst, "to")
	if err != nil {
		return retry(fmt.Errorf("move %d: switch on %s: %w (the fence stays up: run `shardctl move cutover %d` again)", m.Epoch, dst.id, err, m.Epoch))
	}
	if !fenced {
		res.Held = time.Since(began)
	}
	m.say("    %s: %s (its clock), WAL %s; writes to the buckets were refused for %s", dst.id, at.Format(time.RFC3339Nano), lsn, time.Since(began).Round(time.Millisecond))
	m.fail("cutover.marker-to")
	return nil
}

// marker writes a shard's marker in one transaction: the shard's clock, raised above
// every updated_at it holds (so its own clock cannot put an earlier change after it,
// nor a copy before it), and the WAL position of a logical message that CDC sees. For
// the target it also switches the fence rows to owned.
func (m *Mover) marker(ctx context.Context, s *shard, role string) (time.Time, string, error) {
	var greatest []string
	for _, t := range tables(m.Registry) {
		greatest = append(greatest, fmt.Sprintf("(SELECT max(%s) FROM %s)", t.Watermark, t.Name))
	}
	tx, err := s.conn.Begin(ctx)
	if err != nil {
		return time.Time{}, "", retry(fmt.Errorf("shard %s: %w", s.id, err))
	}
	defer tx.Rollback(context.WithoutCancel(ctx)) //nolint:errcheck // no-op after commit
	var at time.Time
	q := "SELECT greatest(clock_timestamp(), " + strings.Join(greatest, ", ") + " + interval '1 microsecond')"
	if err := tx.QueryRow(ctx, q).Scan(&at); err != nil {
		return time.Time{}, "", retry(fmt.Errorf("shard %s: marker time: %w", s.id, err))
	}
	at = at.UTC().Truncate(time.Microsecond)
	payload := fmt.Sprintf(`{"move":%d,"shard":%q,"role":%q,"at":%q}`, m.Epoch, s.id, role, at.Format(time.RFC3339Nano))
	var lsn string
	if err := tx.QueryRow(ctx, "SELECT pg_logical_emit_message(true, 'shardflow.move', $1::text)::text", payload).Scan(&lsn); err != nil {
		return time.Time{}, "", retry(fmt.Errorf("shard %s: marker message: %w", s.id, err))
	}
	set := "marker_at = $2, marker_lsn = $3::pg_lsn, changed_at = clock_timestamp()"
	if role == "to" {
		set += ", state = 'owned'"
	}
	if _, err := tx.Exec(ctx, "UPDATE "+fence.Table+" SET "+set+" WHERE epoch = $1 AND role = '"+role+"' AND marker_at IS NULL", m.Epoch, at, lsn); err != nil {
		return time.Time{}, "", retry(fmt.Errorf("shard %s: write marker: %w", s.id, err))
	}
	if err := tx.Commit(ctx); err != nil {
		return time.Time{}, "", retry(fmt.Errorf("shard %s: write marker: %w", s.id, err))
	}
	return at, lsn, nil
}

// waitCaughtUp waits until every table of the subscription is ready and the source's
// slot is within a megabyte of its WAL end.
func (m *Mover) waitCaughtUp(ctx context.Context, src, dst *shard) error {
	deadline := time.Now().Add(dur(m.CatchUpTimeout, 10*time.Minute))
	for {
		st, err := m.copyState(ctx, src, dst)
		if err != nil {
			return err
		}
		if st.Subscribed && st.TablesReady == st.Tables && st.LagBytes >= 0 && st.LagBytes < 1<<20 {
			m.say("  caught up: %d tables ready, %d bytes behind", st.Tables, st.LagBytes)
			return nil
		}
		if !st.Subscribed {
			return usage(fmt.Errorf("move %d: %s has no subscription %s: run `shardctl move start %d`", m.Epoch, dst.id, m.name(), m.Epoch))
		}
		if time.Now().After(deadline) {
			return retry(fmt.Errorf("move %d: the copy has not caught up (%d of %d tables ready, %d bytes behind): run cutover again later", m.Epoch, st.TablesReady, st.Tables, st.LagBytes))
		}
		sleep(ctx, 200*time.Millisecond)
		if ctx.Err() != nil {
			return retry(ctx.Err())
		}
	}
}

// waitInFlight waits until no client session that may write the tables is in a
// transaction that began before now on the source's clock, which is after the fence
// committed: such a transaction may have passed the trigger's check before the fence
// existed. Transactions that began later see the fence.
func (m *Mover) waitInFlight(ctx context.Context, src *shard) error {
	fencedAt, err := clock(ctx, src.conn)
	if err != nil {
		return retry(fmt.Errorf("shard %s: %w", src.id, err))
	}
	deadline := time.Now().Add(dur(m.FenceTimeout, 30*time.Second))
	var names []string
	for _, t := range tables(m.Registry) {
		names = append(names, "'"+t.Name+"'")
	}
	q := `SELECT pid, xact_start, usename, coalesce(application_name, '')
		FROM pg_stat_activity a
		WHERE backend_type = 'client backend' AND pid <> pg_backend_pid()
		  AND datname = current_database() AND xact_start <= $1
		  AND EXISTS (SELECT FROM unnest(ARRAY[` + strings.Join(names, ", ") + `]) AS t(name)
		              WHERE has_table_privilege(a.usesysid, t.name, 'INSERT, UPDATE, DELETE'))`
	for {
		rows, err := src.conn.Query(ctx, q, fencedAt)
		if err != nil {
			return retry(fmt.Errorf("shard %s: in-flight writers: %w", src.id, err))
		}
		var blockers []string
		for rows.Next() {
			var pid int
			var start time.Time
			var user, app string
			if err := rows.Scan(&pid, &start, &user, &app); err != nil {
				rows.Close()
				return retry(err)
			}
			blockers = append(blockers, fmt.Sprintf("pid %d (%s %s) since %s", pid, user, app, start.UTC().Format(time.RFC3339Nano)))
		}
		rows.Close()
		if err := rows.Err(); err != nil {
			return retry(err)
		}
		if len(blockers) == 0 {
			return nil
		}
		if time.Now().After(deadline) {
			return retry(fmt.Errorf("move %d: transactions older than the fence still run on %s after %s: %s; end them or cut over later",
				m.Epoch, src.id, dur(m.FenceTimeout, 30*time.Second), strings.Join(blockers, ", ")))
		}
		sleep(ctx, 10*time.Millisecond)
		if ctx.Err() != nil {
			return retry(ctx.Err())
		}
	}
}

// waitDrained waits until the target's subscription has confirmed the source's WAL up
// to lsn (everything committed before the source's marker is applied there).
func (m *Mover) waitDrained(ctx context.Context, src, dst *shard, lsn string) error {
	deadline := time.Now().Add(dur(m.DrainTimeout, time.Minute))
	for {
		var done *bool
		err := src.conn.QueryRow(ctx, "SELECT confirmed_flush_lsn >= $2::pg_lsn FROM pg_replication_slots WHERE slot_name = $1", m.name(), lsn).Scan(&done)
		if errors.Is(err, pgx.ErrNoRows) {
			return exitcode.Errorf(exitcode.Permanent, "move %d: the slot %s on %s is gone before the copy passed the marker %s: the target may lack changes; abort the move", m.Epoch, m.name(), src.id, lsn)
		}
		if err != nil {
			return retry(fmt.Errorf("shard %s: slot position: %w", src.id, err))
		}
		if done != nil && *done {
			return nil
		}
		if time.Now().After(deadline) {
			return retry(fmt.Errorf("move %d: %s's subscription did not pass %s's marker %s within %s", m.Epoch, dst.id, src.id, lsn, dur(m.DrainTimeout, time.Minute)))
		}
		sleep(ctx, 20*time.Millisecond)
		if ctx.Err() != nil {
			return retry(ctx.Err())
		}
	}
}

// record writes the fence into shards.yaml when it is not there yet, and checks it
// when it is.
func (m *Mover) record(f registry.Fence) (bool, error) {
	mv := m.move()
	if !mv.Pending() {
		if *mv.Fence != f {
			return false, exitcode.Errorf(exitcode.CheckFail, "move %d: %s records a fence that differs from the shards' markers: shards.yaml %+v, shards %+v", m.Epoch, m.Path, *mv.Fence, f)
		}
		m.say("  %s records the fence already", m.Path)
		return false, nil
	}
	src, err := os.ReadFile(m.Path)
	if err != nil {
		return false, usage(err)
	}
	out, reg, err := registry.RecordMove(src, m.Epoch, f)
	if err != nil {
		return false, exitcode.Wrap(exitcode.Permanent, err)
	}
	m.step("record the fence in %s (commit it: the change a pull request carries)", m.Path)
	if err := writeAtomic(m.Path, out); err != nil {
		return false, exitcode.Wrap(exitcode.Permanent, fmt.Errorf("write %s: %w", m.Path, err))
	}
	m.Registry = reg
	m.fail("cutover.recorded")
	return true, nil
}

func writeAtomic(path string, data []byte) error {
	tmp, err := os.CreateTemp(filepath.Dir(path), ".shards-*.yaml")
	if err != nil {
		return err
	}
	if _, err := tmp.Write(data); err != nil {
		tmp.Close()
		os.Remove(tmp.Name())
		return err
	}
	if err := tmp.Sync(); err != nil {
		tmp.Close()
		os.Remove(tmp.Name())
		return err
	}
	if err := tmp.Close(); err != nil {
		os.Remove(tmp.Name())
		return err
	}
	if fi, err := os.Stat(path); err == nil {
		_ = os.Chmod(tmp.Name(), fi.Mode())
	}
	return os.Rename(tmp.Name(), path)
}

func sleep(ctx context.Context, d time.Duration) {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
	case <-t.C:
	}
}

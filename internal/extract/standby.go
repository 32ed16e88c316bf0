package extract

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/jackc/pgx/v5"
)

// ErrStandbyBehind is the sentinel of a standby that had not replayed the primary's
// closed-window check within Standby.MaxWait (retryable: the window is closed, the
// standby is only late).
var ErrStandbyBehind = errors.New("standby has not replayed past the closed-window check")

// Standby is a hot standby (a physical streaming replica) of a shard that windows are
// read from instead of the primary (decisions/0026). Closure is still judged on the
// primary, where the transactions are: the standby's pg_stat_activity never shows the
// primary's open transactions, so a check there would prove nothing.
//
// Contract: a window read through RunFromStandby is the window a run on the primary
// would land from a snapshot taken after the same check: the standby's snapshot is taken
// only once it has replayed past the primary's WAL insert position read right after the
// check, so every transaction that could write a watermark inside the window (all of
// them had committed when the check passed) is in it.
type Standby struct {
	// Conn is the standby, extract role, not in a transaction.
	Conn *pgx.Conn
	// MaxWait bounds the wait for replay (default 5m); then ErrStandbyBehind (exit 75).
	MaxWait time.Duration
	// Poll is the interval between replay-position reads (default 50ms).
	Poll time.Duration

	// skipWait is the broken version the tests prove wrong: read without waiting.
	skipWait bool
}

// ReplayWait is what RunFromStandby waited for: the primary's WAL insert position right
// after the closed-window check, the standby's replay position when it was read, and
// how long the wait took.
type ReplayWait struct {
	PrimaryLSN string // pg_current_wal_insert_lsn() on the primary after the check
	ReplayLSN  string // pg_last_wal_replay_lsn() on the standby when it was >= PrimaryLSN
	Waited     time.Duration
	Polls      int
}

// RunFromStandby lands window j like Run, reading the rows from the standby sb:
//
//  1. CheckClosed on the primary (e.Conn), where the transactions are; refused as Run
//     refuses (exit 75, naming the blockers).
//  2. The primary's pg_current_wal_insert_lsn(), read after the check. The insert
//     position, not pg_current_wal_lsn() (the write position): with asynchronous commit a
//     transaction is visible, and no longer in pg_stat_activity, before its commit
//     record is written out.
//  3. Wait until the standby's pg_last_wal_replay_lsn() >= that position (a commit
//     record is applied before the replay position moves past it).
//  4. Run on the standby: its schema check, its own closed-window check (trivially
//     true of transactions, a standby has no writers; its clock still gates the safety
//     lag), and the REPEATABLE READ snapshot, taken after step 3.
//
// The standby connection must not be in a transaction: its snapshot is taken in step 4.
func (e *Extractor) RunFromStandby(ctx context.Context, j Job, sb *Standby) (*Result, *ReplayWait, error) {
	if sb == nil || sb.Conn == nil {
		return nil, nil, usageErr(fmt.Errorf("%s: extract from standby: no standby connection", j))
	}
	if _, err := e.prepare(j); err != nil {
		return nil, nil, usageErr(err)
	}
	cl, err := CheckClosed(ctx, e.Conn, j.Shard, j.Table, j.Window, e.safetyLag())
	if err != nil {
		return nil, nil, classify(err)
	}
	if !cl.Closed {
		return nil, nil, retryable(cl.Err)
	}
	rw, err := sb.awaitReplay(ctx, e.Conn, j)
	if err != nil {
		return nil, rw, err
	}
	onStandby := *e
	onStandby.Conn = sb.Conn
	res, err := onStandby.Run(ctx, j)
	return res, rw, err
}

// awaitReplay reads the primary's insert position and waits until the standby has
// replayed past it.
func (sb *Standby) awaitReplay(ctx context.Context, primary *pgx.Conn, j Job) (*ReplayWait, error) {
	rw := &ReplayWait{}
	if err := primary.QueryRow(ctx, "SELECT pg_current_wal_insert_lsn()::text").Scan(&rw.PrimaryLSN); err != nil {
		return nil, classify(fmt.Errorf("%s: primary WAL position after the closed-window check: %w", j, err))
	}
	if sb.skipWait {
		return rw, nil
	}
	maxWait, poll := sb.MaxWait, sb.Poll
	if maxWait <= 0 {
		maxWait = 5 * time.Minute
	}
	if poll <= 0 {
		poll = 50 * time.Millisecond
	}
	start := time.Now()
	for {
		var inRecovery, past bool
		var replay *string
		err := sb.Conn.QueryRow(ctx, `SELECT pg_is_in_recovery(), pg_last_wal_replay_lsn()::text,
			coalesce(pg_last_wal_replay_lsn() >= $1::pg_lsn, false)`, rw.PrimaryLSN).Scan(&inRecovery, &replay, &past)
		rw.Polls++
		if err != nil {
			return rw, classify(fmt.Errorf("%s: standby replay position: %w", j, err))
		}
		if !inRecovery {
			// promoted, or not a standby at all: its WAL is no longer the primary's
			return rw, usageErr(fmt.Errorf("%s: extract from standby: the standby is not in recovery (promoted, or not a standby): read the window from the primary", j))
		}
		if replay != nil {
			rw.ReplayLSN = *replay
		}
		if past {
			rw.Waited = time.Since(start)
			return rw, nil
		}
		if time.Since(start) >= maxWait {
			rw.Waited = time.Since(start)
			return rw, retryable(fmt.Errorf("%s: %w: primary at %s after the check, standby replayed %s after %s (replay paused, or lagging: pg_stat_replication on the primary)",
				j, ErrStandbyBehind, rw.PrimaryLSN, rw.ReplayLSN, rw.Waited.Round(time.Millisecond)))
		}
		select {
		case <-ctx.Done():
			return rw, classify(fmt.Errorf("%s: waiting for the standby to replay %s: %w", j, rw.PrimaryLSN, ctx.Err()))
		case <-time.After(poll):
		}
	}
}

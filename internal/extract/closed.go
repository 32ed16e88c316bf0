package extract

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/shopsphere/shardflow/internal/window"
)

// ErrWindowOpen is the sentinel of every NotClosedError.
var ErrWindowOpen = errors.New("window not closed")

// Blocker is a transaction that could still write a watermark inside the window.
// It carries no query text: a query can hold PCI values.
type Blocker struct {
	PID        int32     // 0 for a prepared transaction
	GID        string    // prepared transactions only
	XactStart  time.Time // transaction start (prepared: the time it was prepared)
	State      string    // pg_stat_activity.state ("idle in transaction", "active", ...)
	User       string
	Prepared   bool
	Connection string // application_name, when set
}

func (b Blocker) String() string {
	if b.Prepared {
		return fmt.Sprintf("prepared transaction gid=%q prepared at %s", b.GID, b.XactStart.UTC().Format(time.RFC3339Nano))
	}
	s := fmt.Sprintf("pid %d (user %s, %s) xact_start %s", b.PID, b.User, b.State, b.XactStart.UTC().Format(time.RFC3339Nano))
	if b.Connection != "" {
		s += fmt.Sprintf(" application_name %q", b.Connection)
	}
	return s
}

// NotClosedError says why a window cannot be extracted yet. It is retryable.
type NotClosedError struct {
	Shard, Table string
	Window       window.Window
	ShardNow     time.Time
	SafetyLag    time.Duration
	TooRecent    bool      // End > ShardNow − SafetyLag
	Blockers     []Blocker // open transactions that started before End
}

func (e *NotClosedError) Error() string {
	var why []string
	if e.TooRecent {
		why = append(why, fmt.Sprintf("window end is after shard now() %s minus safety lag %s", e.ShardNow.UTC().Format(time.RFC3339), e.SafetyLag))
	}
	for i, b := range e.Blockers {
		if i == 3 {
			why = append(why, fmt.Sprintf("and %d more", len(e.Blockers)-3))
			break
		}
		why = append(why, "open transaction that started before the window end: "+b.String())
	}
	return fmt.Sprintf("shard %s table %s window %s: %v: %s", e.Shard, e.Table, e.Window, ErrWindowOpen, strings.Join(why, "; "))
}

func (e *NotClosedError) Unwrap() error { return ErrWindowOpen }

// Closedness is what CheckClosed saw.
type Closedness struct {
	ShardNow time.Time
	Closed   bool
	Err      *NotClosedError // nil when Closed
}

// CheckClosed decides whether window w may be extracted from the shard behind conn
// (docs/contracts.md §2, decisions/0002). It must run outside any transaction and
// before the extract's snapshot is taken:
//
//  1. w.End <= now() − safetyLag on the shard's clock, and
//  2. no client backend of this database other than conn has xact_start < w.End, and
//  3. no prepared transaction is pending in this database.
//
// Prepared transactions are refused whatever their prepare time: PostgreSQL records
// when a transaction was prepared, not when it started, so one prepared after w.End
// may still carry a watermark inside the window.
//
// The role must see other sessions' xact_start (superuser or pg_read_all_stats);
// otherwise the check cannot prove anything and returns an error (not a NotClosedError).
func CheckClosed(ctx context.Context, conn *pgx.Conn, shard, table string, w window.Window, safetyLag time.Duration) (Closedness, error) {
	var now time.Time
	var canSee bool
	err := conn.QueryRow(ctx, `SELECT clock_timestamp(),
		(SELECT rolsuper FROM pg_roles WHERE rolname = current_user) OR pg_has_role(current_user, 'pg_read_all_stats', 'USAGE')`).Scan(&now, &canSee)
	if err != nil {
		return Closedness{}, fmt.Errorf("closed-window check on shard %s: %w", shard, err)
	}
	if !canSee {
		return Closedness{}, fmt.Errorf("closed-window check on shard %s: role cannot see other sessions' transactions; grant pg_read_all_stats to the extract role (docs/contracts.md §1)", shard)
	}
	e := &NotClosedError{Shard: shard, Table: table, Window: w, ShardNow: now, SafetyLag: safetyLag}
	e.TooRecent = w.End.After(now.Add(-safetyLag))

	rows, err := conn.Query(ctx, `SELECT pid, xact_start, coalesce(state, ''), coalesce(usename::text, ''), coalesce(application_name, '')
		FROM pg_stat_activity
		WHERE datname = current_database() AND backend_type = 'client backend'
		  AND pid <> pg_backend_pid() AND xact_start < $1
		ORDER BY xact_start, pid`, w.End)
	if err != nil {
		return Closedness{}, fmt.Errorf("closed-window check on shard %s: %w", shard, err)
	}
	for rows.Next() {
		var b Blocker
		if err := rows.Scan(&b.PID, &b.XactStart, &b.State, &b.User, &b.Connection); err != nil {
			rows.Close()
			return Closedness{}, fmt.Errorf("closed-window check on shard %s: %w", shard, err)
		}
		e.Blockers = append(e.Blockers, b)
	}
	if err := rows.Err(); err != nil {
		return Closedness{}, fmt.Errorf("closed-window check on shard %s: %w", shard, err)
	}

	prows, err := conn.Query(ctx, `SELECT gid, prepared, owner::text FROM pg_prepared_xacts WHERE database = current_database() ORDER BY prepared`)
	if err != nil {
		return Closedness{}, fmt.Errorf("closed-window check on shard %s: %w", shard, err)
	}
	for prows.Next() {
		b := Blocker{Prepared: true}
		if err := prows.Scan(&b.GID, &b.XactStart, &b.User); err != nil {
			prows.Close()
			return Closedness{}, fmt.Errorf("closed-window check on shard %s: %w", shard, err)
		}
		e.Blockers = append(e.Blockers, b)
	}
	if err := prows.Err(); err != nil {
		return Closedness{}, fmt.Errorf("closed-window check on shard %s: %w", shard, err)
	}

	if !e.TooRecent && len(e.Blockers) == 0 {
		return Closedness{ShardNow: now, Closed: true}, nil
	}
	return Closedness{ShardNow: now, Err: e}, nil
}

// Package move performs a bucket move between two live shards, the way a production
// move runs (docs/decisions/0017, docs/runbooks/split-a-shard.md):
//
//	start    the target's fence rows say "incoming" (its trigger refuses application
//	         writes to the buckets); a row-filtered publication on the source and a
//	         subscription on the target copy the buckets' rows while writes go on
//	cutover  once the copy has caught up: the source's fence goes up (writes to the
//	         buckets refused, retryable), in-flight writers finish, the source's marker
//	         is written (its own clock, above every updated_at, and its WAL position),
//	         the subscription drains past it and is dropped, the target's marker is
//	         written (its own clock, above every copied updated_at) and it owns the
//	         buckets; the source says "moved"; the fence goes into shards.yaml
//	verify   every source row of the buckets is on the target, same or newer
//	cleanup  only once the move is recorded and verified, every batch window of the
//	         source through its marker is extracted and loaded and CDC has consumed
//	         past it: the moved rows are deleted from the source
//	abort    before the switch: everything the move made is undone
//
// Every step reads where the move stands from the shards (fence rows, publication,
// subscription, slot) and shards.yaml, and does only what is missing, so a move killed
// at any point is resumed by running the same command again (or rolled back by abort
// before the switch). Nothing here compares one shard's clock with another's: each
// shard's marker is taken from its own clock.
package move

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/shopsphere/shardflow/internal/exitcode"
	"github.com/shopsphere/shardflow/internal/fence"
	"github.com/shopsphere/shardflow/internal/registry"
)

// Tables are moved in this order; their bucket column and primary keys come from
// shards.yaml.
func tables(r *registry.Registry) []registry.Table { return r.Tables }

// Gates answer cleanup's questions about the pipeline: whether everything it needs from
// the source up to the source's marker has landed. Both return a human-readable reason
// when the answer is no.
type Gates interface {
	// BatchLoaded reports whether every batch window of shard and table up to and
	// including the one holding through has been extracted and loaded.
	BatchLoaded(ctx context.Context, shard string, t registry.Table, through time.Time) (ok bool, why string, err error)
	// CDCConsumed reports whether every change event of shard up to WAL position lsn
	// has been landed by tokenize cdc (true when the environment has no CDC); why says
	// what it found either way.
	CDCConsumed(ctx context.Context, shard string, lsn string) (ok bool, why string, err error)
}

// Mover runs the steps of one move.
type Mover struct {
	// Path is shards.yaml; cutover writes the fence into it.
	Path string
	// Registry is Path, parsed and validated; the move is Registry.Moves[Epoch-1].
	Registry *registry.Registry
	Epoch    int
	// DSN returns the admin (superuser) and replication DSNs of a shard.
	DSN func(shard string) (admin, replication string, err error)
	// Gates are cleanup's preconditions (nil: cleanup refuses).
	Gates  Gates
	Out    io.Writer // one line per step
	Log    *slog.Logger
	DryRun bool // print each step; change nothing
	// Failpoint, when set (tests), is called after each step's effect with its name;
	// the test kills the process there to prove the step resumable.
	Failpoint func(step string)

	// CatchUpTimeout bounds cutover's wait for the copy (default 10m), FenceTimeout the
	// wait for in-flight writers once the fence is up (default 30s), DrainTimeout the
	// wait for the subscription to pass the source's marker (default 60s). MaxSkew is the
	// largest clock difference between the shards cutover accepts (default 10s): the
	// target refuses writes until its clock passes the copies' newest updated_at.
	CatchUpTimeout, FenceTimeout, DrainTimeout, MaxSkew time.Duration
}

func (m *Mover) move() registry.Move { return m.Registry.Moves[m.Epoch-1] }

// name is the publication, subscription and slot of the move.
func (m *Mover) name() string { return fmt.Sprintf("shardflow_move_%d", m.Epoch) }

func (m *Mover) log() *slog.Logger {
	if m.Log != nil {
		return m.Log
	}
	return slog.New(slog.NewTextHandler(io.Discard, nil))
}

func (m *Mover) say(format string, args ...any) {
	if m.Out != nil {
		fmt.Fprintf(m.Out, format+"\n", args...)
	}
}

// step prints a step; in a dry run it changes nothing and returns false.
func (m *Mover) step(format string, args ...any) bool {
	if m.DryRun {
		m.say("  would "+format, args...)
		return false
	}
	m.say("  "+format, args...)
	return true
}

func (m *Mover) fail(step string) {
	if m.Failpoint != nil && !m.DryRun {
		m.Failpoint(step)
	}
}

func dur(d, def time.Duration) time.Duration {
	if d > 0 {
		return d
	}
	return def
}

// check returns the move, refusing what cannot be moved.
func (m *Mover) check() (registry.Move, error) {
	if m.Registry == nil || m.DSN == nil {
		return registry.Move{}, exitcode.Errorf(exitcode.Usage, "move: registry and DSNs are required")
	}
	if m.Epoch < 1 || m.Epoch > len(m.Registry.Moves) {
		return registry.Move{}, exitcode.Errorf(exitcode.Usage, "move %d: shards.yaml declares moves 1-%d (declare one with `shardctl move plan --write`)", m.Epoch, len(m.Registry.Moves))
	}
	mv := m.move()
	if !mv.Pending() && mv.Fence == nil {
		return registry.Move{}, exitcode.Errorf(exitcode.Usage, "move %d was recorded by hand with a cutover instant; there is nothing to run", m.Epoch)
	}
	return mv, nil
}

// shard is an admin connection to one of the move's shards.
type shard struct {
	id   string
	conn *pgx.Conn
	repl string // the replication DSN (the subscription connects with it)
}

func (m *Mover) connect(ctx context.Context, id string) (*shard, func(), error) {
	admin, repl, err := m.DSN(id)
	if err != nil {
		return nil, nil, exitcode.Wrap(exitcode.Usage, err)
	}
	c, err := pgx.Connect(ctx, admin)
	if err != nil {
		return nil, nil, exitcode.Wrap(exitcode.Retryable, fmt.Errorf("connect shard %s: %w", id, redactErr(err, admin)))
	}
	if _, err := c.Exec(ctx, "SET TimeZone = 'UTC'"); err != nil {
		c.Close(ctx)
		return nil, nil, exitcode.Wrap(exitcode.Retryable, fmt.Errorf("shard %s: %w", id, err))
	}
	return &shard{id: id, conn: c, repl: repl}, func() { c.Close(context.WithoutCancel(ctx)) }, nil
}

// both connects to the source and the target.
func (m *Mover) both(ctx context.Context) (src, dst *shard, closeFn func(), err error) {
	mv := m.move()
	src, c1, err := m.connect(ctx, mv.From)
	if err != nil {
		return nil, nil, nil, err
	}
	dst, c2, err := m.connect(ctx, mv.To)
	if err != nil {
		c1()
		return nil, nil, nil, err
	}
	return src, dst, func() { c2(); c1() }, nil
}

// bucketPredicate is the SQL predicate selecting the move's buckets.
func bucketPredicate(rs []registry.Range) string {
	parts := make([]string, len(rs))
	for i, r := range rs {
		parts[i] = fmt.Sprintf("(%s BETWEEN %d AND %d)", registry.BucketColumn, r.Lo, r.Hi)
	}
	return "(" + strings.Join(parts, " OR ") + ")"
}

// rows reads the move's fence rows on a shard.
func (m *Mover) rows(ctx context.Context, s *shard, role registry.FenceRole) ([]fence.Row, error) {
	all, err := fence.Read(ctx, s.conn)
	if err != nil {
		return nil, exitcode.Wrap(exitcode.Retryable, fmt.Errorf("shard %s: %w", s.id, err))
	}
	var out []fence.Row
	for _, r := range all {
		if r.Epoch == m.Epoch && r.Role == role {
			out = append(out, r)
		}
	}
	return out, nil
}

// fenceRows reads the move's fence rows on the source (role from) and the target (to).
func (m *Mover) fenceRows(ctx context.Context, src, dst *shard) (from, to []fence.Row, err error) {
	if from, err = m.rows(ctx, src, registry.RoleFrom); err != nil {
		return nil, nil, err
	}
	if to, err = m.rows(ctx, dst, registry.RoleTo); err != nil {
		return nil, nil, err
	}
	return from, to, nil
}

// putFence writes the move's fence rows for role on a shard, once.
func (m *Mover) putFence(ctx context.Context, s *shard, role registry.FenceRole, state fence.State, peer string) error {
	for _, rg := range m.move().Buckets {
		_, err := s.conn.Exec(ctx, `INSERT INTO `+fence.Table+` (epoch, role, bucket_lo, bucket_hi, state, peer)
			VALUES ($1, $2, $3, $4, $5, $6) ON CONFLICT (epoch, role, bucket_lo) DO NOTHING`,
			m.Epoch, string(role), rg.Lo, rg.Hi, string(state), peer)
		if err != nil {
			return retry(fmt.Errorf("shard %s: write fence: %w", s.id, err))
		}
	}
	return nil
}

// clock reads a shard's clock.
func clock(ctx context.Context, c *pgx.Conn) (time.Time, error) {
	var t time.Time
	err := c.QueryRow(ctx, "SELECT clock_timestamp()").Scan(&t)
	return t.UTC(), err
}

// skew estimates how far b's clock is ahead of a's (negative: behind), from one round
// trip to each: the error is at most half the round trips.
func skew(ctx context.Context, a, b *pgx.Conn) (time.Duration, error) {
	t0 := time.Now()
	ta, err := clock(ctx, a)
	if err != nil {
		return 0, err
	}
	t1 := time.Now()
	tb, err := clock(ctx, b)
	if err != nil {
		return 0, err
	}
	t2 := time.Now()
	// map each reading to the local midpoint of its round trip
	return tb.Sub(ta) - (t2.Sub(t1)/2 + t1.Sub(t0)/2), nil
}

func retry(err error) error { return exitcode.Wrap(exitcode.Retryable, err) }
func usage(err error) error { return exitcode.Wrap(exitcode.Usage, err) }

// redactErr drops a DSN's password from an error text.
func redactErr(err error, dsn string) error {
	s := err.Error()
	if i := strings.Index(dsn, "://"); i >= 0 {
		if at := strings.Index(dsn[i+3:], "@"); at >= 0 {
			if colon := strings.Index(dsn[i+3:i+3+at], ":"); colon >= 0 {
				pw := dsn[i+3+colon+1 : i+3+at]
				if pw != "" {
					s = strings.ReplaceAll(s, pw, "***")
				}
			}
		}
	}
	return errors.New(s)
}

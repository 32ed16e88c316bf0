package move

import (
	"context"
	"errors"
	"fmt"
	"net/url"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"

	"github.com/shopsphere/shardflow/internal/fence"
	"github.com/shopsphere/shardflow/internal/registry"
)

// Start begins the copy: the target's fence rows (incoming), the source's row-filtered
// publication, the target's subscription. Refused unless the move is pending in
// shards.yaml, the target holds no row of the buckets (other than this move's copies),
// and the shards' clocks are within MaxSkew.
func (m *Mover) Start(ctx context.Context) error {
	mv, err := m.check()
	if err != nil {
		return err
	}
	if !mv.Pending() {
		return usage(fmt.Errorf("move %d is already recorded in shards.yaml (cut over at %s): nothing to start", m.Epoch, mv.Instant().Format("2006-01-02T15:04:05.999999Z")))
	}
	m.say("move %d: %s → %s, buckets %s: start", m.Epoch, mv.From, mv.To, registry.FormatRanges(mv.Buckets))
	src, dst, closeAll, err := m.both(ctx)
	if err != nil {
		return err
	}
	defer closeAll()

	incoming, err := m.rows(ctx, dst, registry.RoleTo)
	if err != nil {
		return err
	}
	if len(incoming) > 0 && incoming[0].State != fence.Incoming {
		return usage(fmt.Errorf("move %d: %s already owns the buckets (state %s): the move is past its switch", m.Epoch, dst.id, incoming[0].State))
	}
	if len(incoming) == 0 {
		// a fresh start: the target must hold nothing of the buckets
		for _, t := range tables(m.Registry) {
			var n int64
			if err := dst.conn.QueryRow(ctx, "SELECT count(*) FROM "+t.Name+" WHERE "+bucketPredicate(mv.Buckets)).Scan(&n); err != nil {
				return retry(fmt.Errorf("shard %s: count %s: %w", dst.id, t.Name, err))
			}
			if n > 0 {
				return usage(fmt.Errorf("move %d: target %s already holds %d rows of %s in buckets %s (left from an earlier move? delete them first)", m.Epoch, dst.id, n, t.Name, registry.FormatRanges(mv.Buckets)))
			}
		}
	}
	sk, err := skew(ctx, src.conn, dst.conn)
	if err != nil {
		return retry(fmt.Errorf("read the shards' clocks: %w", err))
	}
	m.say("  clocks: %s minus %s is %s (round-trip estimate, limit %s)", dst.id, src.id, sk.Round(time.Microsecond), dur(m.MaxSkew, defaultMaxSkew))
	if abs(sk) > dur(m.MaxSkew, defaultMaxSkew) {
		return usage(fmt.Errorf("move %d: the clocks of %s and %s differ by %s (more than %s): fix their time sync first; the target refuses writes until its clock passes the newest copied updated_at", m.Epoch, src.id, dst.id, sk.Round(time.Microsecond), dur(m.MaxSkew, defaultMaxSkew)))
	}

	if len(incoming) == 0 && m.step("fence %s: buckets %s incoming from %s (application writes there refused until the switch)", dst.id, registry.FormatRanges(mv.Buckets), src.id) {
		if err := m.putFence(ctx, dst, registry.RoleTo, fence.Incoming, src.id); err != nil {
			return err
		}
		m.fail("start.fence")
	}

	var hasPub bool
	if err := src.conn.QueryRow(ctx, "SELECT EXISTS (SELECT FROM pg_publication WHERE pubname = $1)", m.name()).Scan(&hasPub); err != nil {
		return retry(fmt.Errorf("shard %s: %w", src.id, err))
	}
	if !hasPub && m.step("publish on %s: %s (row filter %s)", src.id, m.name(), bucketPredicate(mv.Buckets)) {
		var parts []string
		for _, t := range tables(m.Registry) {
			parts = append(parts, t.Name+" WHERE "+bucketPredicate(mv.Buckets))
		}
		if _, err := src.conn.Exec(ctx, "CREATE PUBLICATION "+m.name()+" FOR TABLE "+strings.Join(parts, ", ")); err != nil {
			return retry(fmt.Errorf("shard %s: create publication: %w", src.id, err))
		}
		m.fail("start.publication")
	}

	var hasSub bool
	if err := dst.conn.QueryRow(ctx, "SELECT EXISTS (SELECT FROM pg_subscription WHERE subname = $1)", m.name()).Scan(&hasSub); err != nil {
		return retry(fmt.Errorf("shard %s: %w", dst.id, err))
	}
	if !hasSub && m.step("subscribe on %s: %s, copying the buckets' rows, then streaming their changes", dst.id, m.name()) {
		// a slot left by an attempt killed inside CREATE SUBSCRIPTION is dropped first
		if err := m.dropSlot(ctx, src); err != nil {
			return err
		}
		conninfo, err := libpqConninfo(src.repl)
		if err != nil {
			return usage(fmt.Errorf("shard %s: replication DSN: %w", src.id, err))
		}
		_, err = dst.conn.Exec(ctx, "CREATE SUBSCRIPTION "+m.name()+" CONNECTION "+quoteLiteral(conninfo)+
			" PUBLICATION "+m.name()+" WITH (copy_data = true, slot_name = '"+m.name()+"')")
		if err != nil {
			return retry(fmt.Errorf("shard %s: create subscription: %w", dst.id, redactErr(err, src.repl)))
		}
		m.fail("start.subscription")
	}
	m.say("move %d: copying; `shardctl move status %d` shows the progress, `shardctl move cutover %d` switches once caught up", m.Epoch, m.Epoch, m.Epoch)
	return nil
}

const defaultMaxSkew = 10 * time.Second

func abs[T ~int64](d T) T {
	if d < 0 {
		return -d
	}
	return d
}

// dropSlot drops the move's replication slot on the source when it exists and no
// subscriber uses it.
func (m *Mover) dropSlot(ctx context.Context, src *shard) error {
	var active *bool
	err := src.conn.QueryRow(ctx, "SELECT active FROM pg_replication_slots WHERE slot_name = $1", m.name()).Scan(&active)
	if errors.Is(err, pgx.ErrNoRows) {
		return nil
	}
	if err != nil {
		return retry(fmt.Errorf("shard %s: read slot: %w", src.id, err))
	}
	if active != nil && *active {
		return retry(fmt.Errorf("shard %s: slot %s is in use by a subscriber", src.id, m.name()))
	}
	if _, err := src.conn.Exec(ctx, "SELECT pg_drop_replication_slot($1)", m.name()); err != nil {
		return retry(fmt.Errorf("shard %s: drop slot %s: %w", src.id, m.name(), err))
	}
	return nil
}

// dropSubscription drops the target's subscription and with it the source's slot.
func (m *Mover) dropSubscription(ctx context.Context, src, dst *shard) error {
	var has bool
	if err := dst.conn.QueryRow(ctx, "SELECT EXISTS (SELECT FROM pg_subscription WHERE subname = $1)", m.name()).Scan(&has); err != nil {
		return retry(fmt.Errorf("shard %s: %w", dst.id, err))
	}
	if has {
		if _, err := dst.conn.Exec(ctx, "ALTER SUBSCRIPTION "+m.name()+" DISABLE"); err != nil {
			return retry(fmt.Errorf("shard %s: disable subscription: %w", dst.id, err))
		}
		// the slot is dropped below, on the source, once the apply worker let go of it
		if _, err := dst.conn.Exec(ctx, "ALTER SUBSCRIPTION "+m.name()+" SET (slot_name = NONE)"); err != nil {
			return retry(fmt.Errorf("shard %s: detach subscription slot: %w", dst.id, err))
		}
		if _, err := dst.conn.Exec(ctx, "DROP SUBSCRIPTION "+m.name()); err != nil {
			return retry(fmt.Errorf("shard %s: drop subscription: %w", dst.id, err))
		}
	}
	// the walsender may take a moment to exit after the apply worker stops
	for i := 0; ; i++ {
		err := m.dropSlot(ctx, src)
		if err == nil || i == 100 || ctx.Err() != nil {
			return err
		}
		sleep(ctx, 100*time.Millisecond)
	}
}

// Abort undoes a move that has not switched: the subscription and its slot, the
// source's fence (its writes resume), the target's copies and fence rows, the
// publication. shards.yaml keeps the declaration: revert it in a pull request.
func (m *Mover) Abort(ctx context.Context) error {
	mv, err := m.check()
	if err != nil {
		return err
	}
	src, dst, closeAll, err := m.both(ctx)
	if err != nil {
		return err
	}
	defer closeAll()
	to, err := m.rows(ctx, dst, registry.RoleTo)
	if err != nil {
		return err
	}
	if len(to) > 0 && to[0].State == fence.Owned || !mv.Pending() {
		return usage(fmt.Errorf("move %d has switched: %s owns the buckets; move them back with a new move instead", m.Epoch, mv.To))
	}
	m.say("move %d: %s → %s, buckets %s: abort", m.Epoch, mv.From, mv.To, registry.FormatRanges(mv.Buckets))
	if m.step("drop the subscription on %s and its slot on %s", dst.id, src.id) {
		if err := m.dropSubscription(ctx, src, dst); err != nil {
			return err
		}
	}
	if m.step("lift the fence on %s (its writes to the buckets resume)", src.id) {
		if _, err := src.conn.Exec(ctx, "DELETE FROM "+fence.Table+" WHERE epoch = $1 AND role = 'from'", m.Epoch); err != nil {
			return retry(fmt.Errorf("shard %s: lift fence: %w", src.id, err))
		}
	}
	if m.step("delete the copies on %s, then its fence rows", dst.id) {
		tx, err := dst.conn.Begin(ctx)
		if err != nil {
			return retry(err)
		}
		defer tx.Rollback(context.WithoutCancel(ctx)) //nolint:errcheck // no-op after commit
		// copies were written by the apply worker; delete them the same way (no triggers)
		if _, err := tx.Exec(ctx, "SET LOCAL session_replication_role = replica"); err != nil {
			return retry(fmt.Errorf("shard %s: %w", dst.id, err))
		}
		for _, t := range tables(m.Registry) {
			if _, err := tx.Exec(ctx, "DELETE FROM "+t.Name+" WHERE "+bucketPredicate(mv.Buckets)); err != nil {
				return retry(fmt.Errorf("shard %s: delete copies of %s: %w", dst.id, t.Name, err))
			}
		}
		if _, err := tx.Exec(ctx, "DELETE FROM "+fence.Table+" WHERE epoch = $1 AND role = 'to'", m.Epoch); err != nil {
			return retry(fmt.Errorf("shard %s: %w", dst.id, err))
		}
		if err := tx.Commit(ctx); err != nil {
			return retry(fmt.Errorf("shard %s: %w", dst.id, err))
		}
	}
	if m.step("drop the publication on %s", src.id) {
		if _, err := src.conn.Exec(ctx, "DROP PUBLICATION IF EXISTS "+m.name()); err != nil {
			return retry(fmt.Errorf("shard %s: drop publication: %w", src.id, err))
		}
	}
	m.say("move %d aborted: revert its declaration in shards.yaml", m.Epoch)
	return nil
}

// libpqConninfo turns a postgres:// URL into the key=value form CREATE SUBSCRIPTION
// stores (the URL form is accepted too; key=value keeps the password out of URL
// escaping questions).
func libpqConninfo(dsn string) (string, error) {
	cfg, err := pgconn.ParseConfig(dsn)
	if err != nil {
		return "", errors.New("cannot parse it")
	}
	u, err := url.Parse(dsn)
	if err != nil || u.Scheme == "" {
		return dsn, nil // already key=value
	}
	parts := []string{
		"host=" + cfg.Host, fmt.Sprintf("port=%d", cfg.Port), "dbname=" + cfg.Database, "user=" + cfg.User,
	}
	if cfg.Password != "" {
		parts = append(parts, "password="+cfg.Password)
	}
	if ssl := u.Query().Get("sslmode"); ssl != "" {
		parts = append(parts, "sslmode="+ssl)
	}
	return strings.Join(parts, " "), nil
}

func quoteLiteral(s string) string { return "'" + strings.ReplaceAll(s, "'", "''") + "'" }

// Package fence reads a shard's bucket fences: the rows `shardctl move` writes into
// shardflow_bucket_fence on both shards of a move (internal/fleet/schema.sql,
// docs/decisions/0017). The shard's trigger enforces them on every write; extract-window,
// dq and tokenize cdc read them to judge a pending move's changes by the shard's own
// markers (registry.ShardView).
package fence

import (
	"context"
	"errors"
	"fmt"
	"sort"
	"sync"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"

	"github.com/shopsphere/shardflow/internal/registry"
)

// Table is the fence table on every shard.
const Table = "shardflow_bucket_fence"

// State is a fence row's state.
type State string

// States. A source's row is fenced (marker_at NULL while in-flight writes finish, then
// set), then moved; a target's is incoming, then owned from its marker.
const (
	Incoming State = "incoming"
	Fenced   State = "fenced"
	Moved    State = "moved"
	Owned    State = "owned"
)

// Row is one fence row: one bucket range of one move on this shard.
type Row struct {
	Epoch      int
	Role       registry.FenceRole
	Range      registry.Range
	State      State
	Peer       string
	MarkerAt   time.Time // zero until written
	MarkerLSN  string
	VerifiedAt time.Time
	CleanedAt  time.Time
	ChangedAt  time.Time
}

// Querier is a connection or a transaction.
type Querier interface {
	Query(ctx context.Context, sql string, args ...any) (pgx.Rows, error)
}

// ErrNoTable: the shard lacks the fence table (its schema is older than
// internal/fleet/schema.sql).
var ErrNoTable = errors.New("the shard has no " + Table + " (apply the shard schema, internal/fleet/schema.sql)")

// Read returns the shard's fence rows, ordered by epoch, role and bucket. Inside a
// REPEATABLE READ transaction they are the fences of its snapshot.
func Read(ctx context.Context, q Querier) ([]Row, error) {
	rows, err := q.Query(ctx, `SELECT epoch, role, bucket_lo, bucket_hi, state, peer,
		marker_at, coalesce(marker_lsn::text, ''), verified_at, cleaned_at, changed_at
		FROM `+Table+` ORDER BY epoch, role, bucket_lo`)
	if err != nil {
		var pe *pgconn.PgError
		if errors.As(err, &pe) && pe.Code == "42P01" {
			return nil, ErrNoTable
		}
		return nil, fmt.Errorf("read fences: %w", err)
	}
	defer rows.Close()
	var out []Row
	for rows.Next() {
		var r Row
		var role, state string
		var marker, verified, cleaned *time.Time
		if err := rows.Scan(&r.Epoch, &role, &r.Range.Lo, &r.Range.Hi, &state, &r.Peer, &marker, &r.MarkerLSN, &verified, &cleaned, &r.ChangedAt); err != nil {
			return nil, fmt.Errorf("read fences: %w", err)
		}
		r.Role, r.State = registry.FenceRole(role), State(state)
		r.MarkerAt, r.VerifiedAt, r.CleanedAt = deref(marker), deref(verified), deref(cleaned)
		out = append(out, r)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("read fences: %w", err)
	}
	return out, nil
}

func deref(t *time.Time) time.Time {
	if t == nil {
		return time.Time{}
	}
	return t.UTC()
}

// Markers turns rows into the registry's ShardFence values: one per (move, role), with
// the marker once written. The rows of one move and role share their marker.
func Markers(rows []Row) []registry.ShardFence {
	type key struct {
		epoch int
		role  registry.FenceRole
	}
	seen := map[key]*registry.ShardFence{}
	var keys []key
	for _, r := range rows {
		k := key{r.Epoch, r.Role}
		f := seen[k]
		if f == nil {
			f = &registry.ShardFence{Epoch: r.Epoch, Role: r.Role}
			seen[k] = f
			keys = append(keys, k)
		}
		if f.At.IsZero() && !r.MarkerAt.IsZero() && (r.Role == registry.RoleFrom || r.State == Owned) {
			f.At, f.LSN = r.MarkerAt, r.MarkerLSN
		}
	}
	sort.Slice(keys, func(i, j int) bool {
		return keys[i].epoch < keys[j].epoch || (keys[i].epoch == keys[j].epoch && keys[i].role < keys[j].role)
	})
	out := make([]registry.ShardFence, 0, len(keys))
	for _, k := range keys {
		out = append(out, *seen[k])
	}
	return out
}

// View reads the shard's fences and returns its ownership view.
func View(ctx context.Context, q Querier, reg *registry.Registry, shard string) (*registry.ShardView, []Row, error) {
	rows, err := Read(ctx, q)
	if err != nil {
		return nil, nil, err
	}
	v, err := reg.ShardView(shard, Markers(rows))
	if err != nil {
		return nil, nil, err
	}
	return v, rows, nil
}

// Views gives each shard's ownership view to a reader of many shards without
// connections of its own (tokenize cdc). A shard in no pending move is judged by the
// registry alone, without any query. For a shard in a pending move it reads the
// shard's fences, at most once per call, and keeps the view once the shard's markers
// of all its pending moves are written (a marker never changes). Read the view after
// the changes it judges were read from Kafka: a change committed after a marker was
// committed, so its fence row is visible by then. Safe for concurrent use.
type Views struct {
	Registry *registry.Registry
	// DSN returns the DSN of a role that may read the shard's fence table.
	DSN func(shard string) (string, error)

	mu    sync.Mutex
	conns map[string]*pgx.Conn
	final map[string]*registry.ShardView
}

// View returns shard's current view.
func (v *Views) View(ctx context.Context, shard string) (*registry.ShardView, error) {
	pending := false
	for _, m := range v.Registry.Pending() {
		if m.From == shard || m.To == shard {
			pending = true
		}
	}
	if !pending {
		return v.Registry.ShardView(shard, nil)
	}
	v.mu.Lock()
	defer v.mu.Unlock()
	if view := v.final[shard]; view != nil {
		return view, nil
	}
	c, err := v.conn(ctx, shard)
	if err != nil {
		return nil, err
	}
	rows, err := Read(ctx, c)
	if err != nil {
		_ = c.Close(context.WithoutCancel(ctx))
		delete(v.conns, shard)
		return nil, fmt.Errorf("shard %s: %w", shard, err)
	}
	marks := Markers(rows)
	view, err := v.Registry.ShardView(shard, marks)
	if err != nil {
		return nil, err
	}
	if v.complete(shard, marks) {
		if v.final == nil {
			v.final = map[string]*registry.ShardView{}
		}
		v.final[shard] = view
	}
	return view, nil
}

// complete reports whether shard's markers of every pending move it is in are written.
func (v *Views) complete(shard string, marks []registry.ShardFence) bool {
	for _, m := range v.Registry.Pending() {
		if m.From != shard && m.To != shard {
			continue
		}
		role := registry.RoleFrom
		if m.To == shard {
			role = registry.RoleTo
		}
		found := false
		for _, f := range marks {
			if f.Epoch == m.Epoch && f.Role == role && !f.At.IsZero() {
				found = true
			}
		}
		if !found {
			return false
		}
	}
	return true
}

func (v *Views) conn(ctx context.Context, shard string) (*pgx.Conn, error) {
	if c := v.conns[shard]; c != nil && !c.IsClosed() {
		return c, nil
	}
	if v.DSN == nil {
		return nil, fmt.Errorf("shard %s is in a pending move: reading its fences needs its DSN", shard)
	}
	dsn, err := v.DSN(shard)
	if err != nil {
		return nil, err
	}
	c, err := pgx.Connect(ctx, dsn)
	if err != nil {
		return nil, fmt.Errorf("shard %s: connect to read its fences: %w", shard, err)
	}
	if v.conns == nil {
		v.conns = map[string]*pgx.Conn{}
	}
	v.conns[shard] = c
	return c, nil
}

// Close closes the connections.
func (v *Views) Close() {
	v.mu.Lock()
	defer v.mu.Unlock()
	for _, c := range v.conns {
		_ = c.Close(context.Background())
	}
	v.conns = nil
}

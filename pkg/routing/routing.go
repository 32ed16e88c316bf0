// Package routing is the application's side of shardflow's contract: which bucket a
// customer is in, which shard owns a bucket, and what to do when a shard refuses a
// write because its bucket is being moved. The order service imports it; shardflow's
// own traffic generator (internal/workload) uses it the same way.
//
// The contract (docs/contracts.md §1, docs/decisions/0017):
//
//   - Every row carries bucket = Bucket(customer_id, buckets), computed here and
//     nowhere else (SQL never re-implements the hash).
//   - A write goes to Router.Owner(bucket). The shard enforces ownership changes itself:
//     its fence trigger refuses writes to a bucket that is being moved, has moved away,
//     or has not arrived yet, with a SQLSTATE of class SF. Classify turns such an error
//     into a *FenceError; Router.Learn records where the bucket lives now, so the
//     retry goes there. Retry the whole transaction, in a new transaction: a write
//     refused by a fence committed nothing.
//   - updated_at and row_version are stamped by the shard (its trigger); never set them.
//   - Rows are deleted softly (deleted = true); hard deletes belong to a move's cleanup.
//
// Writes are refused only around a move's switch, typically for well under a second per
// moved bucket range (`shardctl move status` reports the fence's duration).
package routing

import (
	"errors"
	"fmt"
	"io"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/jackc/pgx/v5/pgconn"

	"github.com/shopsphere/shardflow/internal/registry"
)

// Bucket maps a customer to one of n virtual buckets: FNV-1a-64 of the customer id as
// 8 big-endian bytes, mod n (shards.yaml routing.buckets). Pinned by test vectors.
func Bucket(customerID int64, n int) int { return registry.Bucket(customerID, n) }

// Router answers which shard owns a bucket: the assignment of the shards.yaml it was
// made from, corrected by what shards have said since (Learn). Safe for concurrent use.
type Router struct {
	reg     *registry.Registry
	mu      sync.RWMutex
	learned map[int]string // bucket → shard, from fence errors
}

// New returns a router over a validated registry.
func New(reg *registry.Registry) *Router {
	return &Router{reg: reg, learned: map[int]string{}}
}

// Load reads and validates shards.yaml.
func Load(r io.Reader) (*Router, error) {
	reg, err := registry.Check(r)
	if err != nil {
		return nil, fmt.Errorf("routing: shards.yaml: %w", err)
	}
	return New(reg), nil
}

// Buckets is the fleet's bucket count.
func (r *Router) Buckets() int { return r.reg.Routing.Buckets }

// Bucket maps a customer to its bucket with the fleet's bucket count.
func (r *Router) Bucket(customerID int64) int { return r.reg.Bucket(customerID) }

// Owner returns the shard to write bucket b to now.
func (r *Router) Owner(b int) string {
	r.mu.RLock()
	s, ok := r.learned[b]
	r.mu.RUnlock()
	if ok {
		return s
	}
	return r.current(b)
}

// current is the owner by the registry's current assignment (shards[].buckets).
func (r *Router) current(b int) string {
	for _, s := range r.reg.Shards {
		for _, rg := range s.Buckets {
			if rg.Contains(b) {
				return s.ID
			}
		}
	}
	return ""
}

// OwnerAt returns the shard that owned bucket b at instant t by shards.yaml's history
// (moves and their cutovers): for reports. Whether a change counted is decided by each
// shard's own fence markers, not by this.
func (r *Router) OwnerAt(b int, t time.Time) string {
	s, _ := r.reg.OwnerAt(b, t)
	return s
}

// Learn takes a write's error. When it is a fence error that names where the bucket
// lives (moved, or not arrived yet), the router routes the bucket range there from now
// on. It returns the fence error, or nil when err is not one.
func (r *Router) Learn(err error) *FenceError {
	fe := Classify(err)
	if fe == nil {
		return nil
	}
	if fe.Kind == Moved || fe.Kind == Arriving {
		r.mu.Lock()
		for b := fe.Lo; b <= fe.Hi && fe.Peer != ""; b++ {
			if fe.Peer == r.current(b) {
				delete(r.learned, b)
			} else {
				r.learned[b] = fe.Peer
			}
		}
		r.mu.Unlock()
	}
	return fe
}

// Kind is what a fence error asks of the writer.
type Kind int

// Kinds of fence errors, by SQLSTATE.
const (
	Fenced        Kind = iota + 1 // SF001: the bucket is switching; retry in a moment
	StartedBefore                 // SF002: the transaction began before the switch; retry now
	Arriving                      // SF003: not here yet; write to Peer
	Moved                         // SF004: moved to Peer; write there
)

// kinds maps the fence trigger's SQLSTATEs to their kinds (internal/fleet/schema.sql).
var kinds = map[string]Kind{"SF001": Fenced, "SF002": StartedBefore, "SF003": Arriving, "SF004": Moved}

func (k Kind) String() string {
	switch k {
	case Fenced:
		return "fenced"
	case StartedBefore:
		return "started before the switch"
	case Arriving:
		return "arriving"
	case Moved:
		return "moved"
	}
	return "unknown"
}

// FenceError is a write a shard refused because of a move.
type FenceError struct {
	Kind   Kind
	Move   int    // the move's epoch
	Bucket int    // the bucket written
	Lo, Hi int    // the fenced range it is in
	Peer   string // the move's other shard
	Err    error  // the driver's error
}

func (e *FenceError) Error() string {
	return fmt.Sprintf("bucket %d %s (move %d, peer %s)", e.Bucket, e.Kind, e.Move, e.Peer)
}

func (e *FenceError) Unwrap() error { return e.Err }

// Retry says how long to wait before retrying the transaction (on Peer for Moved and
// Arriving, on the same shard otherwise).
func (e *FenceError) Retry() time.Duration {
	if e.Kind == Fenced {
		return 20 * time.Millisecond
	}
	return 0
}

// Classify returns err as a *FenceError when a shard's fence trigger raised it
// (SQLSTATE SF001-SF004), else nil.
func Classify(err error) *FenceError {
	if err == nil {
		return nil
	}
	var fe *FenceError
	if errors.As(err, &fe) {
		return fe
	}
	var pe *pgconn.PgError
	if !errors.As(err, &pe) || !strings.HasPrefix(pe.Code, "SF") {
		return nil
	}
	kind, ok := kinds[pe.Code]
	if !ok {
		return nil
	}
	out := &FenceError{Kind: kind, Err: err}
	// DETAIL: move=2 bucket=1100 lo=1024 hi=1535 peer=s04
	for _, kv := range strings.Fields(pe.Detail) {
		k, v, _ := strings.Cut(kv, "=")
		n, _ := strconv.Atoi(v)
		switch k {
		case "move":
			out.Move = n
		case "bucket":
			out.Bucket = n
		case "lo":
			out.Lo = n
		case "hi":
			out.Hi = n
		case "peer":
			out.Peer = v
		}
	}
	if out.Hi < out.Lo || (out.Lo == 0 && out.Hi == 0) {
		out.Lo, out.Hi = out.Bucket, out.Bucket
	}
	return out
}

package registry

import (
	"fmt"
	"time"
)

// FenceRole is a shard's side of a move.
type FenceRole string

// Fence roles.
const (
	RoleFrom FenceRole = "from" // the source: its marker ends its ownership
	RoleTo   FenceRole = "to"   // the target: its marker begins its ownership
)

// ShardFence is what one shard's own fence table says about a move (internal/fence
// reads it): the move's epoch, the shard's role, and the shard's marker once written.
// The source's marker is written when its fence is up and every earlier write to the
// buckets has committed; the target's at the switch. At is zero before that.
type ShardFence struct {
	Epoch int
	Role  FenceRole
	At    time.Time
	LSN   string
}

// ShardView is one shard's ownership: the registry's spans of that shard, amended for
// pending moves by the shard's own fence markers. It is what landing and dq judge a
// shard's changes by. Recorded moves are judged by the registry alone (the reviewed
// file is the authority once a move is recorded; dq's move audit compares it with the
// shards' markers).
type ShardView struct {
	reg   *Registry
	shard string
	spans [][]span // bucket → this shard's spans
}

// ShardView returns shard's view given the fence rows read from it. A fence row of a
// move the registry does not declare, or whose role the shard does not play, is an
// error: the shard and shards.yaml disagree about a move.
func (r *Registry) ShardView(shard string, fences []ShardFence) (*ShardView, error) {
	i := indexOf(r.owners.shards, shard)
	if i < 0 {
		return nil, fmt.Errorf("shard %s is not in shards.yaml", shard)
	}
	v := &ShardView{reg: r, shard: shard, spans: make([][]span, len(r.owners.spans))}
	for b, ss := range r.owners.spans {
		for _, s := range ss {
			if s.shard == i && !s.pending {
				v.spans[b] = append(v.spans[b], s)
			}
		}
	}
	for _, f := range fences {
		if f.Epoch < 1 || f.Epoch > len(r.Moves) {
			return nil, fmt.Errorf("shard %s has a fence of move epoch %d, which shards.yaml does not declare", shard, f.Epoch)
		}
		m := r.Moves[f.Epoch-1]
		if (f.Role == RoleFrom && m.From != shard) || (f.Role == RoleTo && m.To != shard) || (f.Role != RoleFrom && f.Role != RoleTo) {
			return nil, fmt.Errorf("shard %s has a %q fence of move %d (%s → %s)", shard, f.Role, m.Epoch, m.From, m.To)
		}
		if !m.Pending() || f.At.IsZero() {
			continue
		}
		for _, rg := range m.Buckets {
			for b := rg.Lo; b <= rg.Hi && b < len(v.spans); b++ {
				ss := v.spans[b]
				switch f.Role {
				case RoleFrom:
					if n := len(ss); n > 0 && ss[n-1].to.IsZero() {
						ss[n-1].to = f.At
					}
				case RoleTo:
					v.spans[b] = append(ss, span{shard: i, epoch: m.Epoch, from: f.At})
				}
			}
		}
	}
	return v, nil
}

// Shard is the view's shard.
func (v *ShardView) Shard() string { return v.shard }

// Owns reports whether the shard owned bucket b at instant t of its own clock.
func (v *ShardView) Owns(b int, t time.Time) bool {
	if b < 0 || b >= len(v.spans) {
		return false
	}
	for _, s := range v.spans[b] {
		if s.covers(t) {
			return true
		}
	}
	return false
}

// Owned is Owns for the view's shard (false for any other) with the epoch to record
// with the change (Registry.EpochAt).
func (v *ShardView) Owned(shard string, b int, t time.Time) (epoch int, ok bool) {
	return v.reg.EpochAt(t), shard == v.shard && v.Owns(b, t)
}

// Intervals returns the shard's intervals in this view, ordered by bucket then time:
// the ownership filter extract and dq compile into SQL.
func (v *ShardView) Intervals() []Interval {
	o := &ownership{shards: v.reg.owners.shards, spans: v.spans}
	return o.intervals(func(span) bool { return true })
}

// OwnedAt returns the bucket ranges the shard owned at instant t of its own clock.
func (v *ShardView) OwnedAt(t time.Time) []Range {
	var bs []int
	for b := range v.spans {
		if v.Owns(b, t) {
			bs = append(bs, b)
		}
	}
	return Ranges(bs)
}

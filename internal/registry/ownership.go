package registry

import (
	"sort"
	"time"
)

// ownership answers "which shard owned bucket b at instant t" for every bucket and every
// epoch. Epoch 0 is the assignment before the first move; epoch k begins at moves[k-1].Cutover.
type ownership struct {
	shards  []string
	initial []int      // bucket → shard index at epoch 0
	changes [][]change // bucket → its moves, in cutover order
	moves   []Move
}

type change struct {
	at    time.Time
	epoch int
	shard int
}

// buildOwnership derives epoch 0 by undoing the moves from the current assignment, and
// reports a move whose buckets its from-shard did not own at that moment.
func buildOwnership(r *Registry, current []int, errs *Errors) *ownership {
	o := &ownership{initial: append([]int(nil), current...), changes: make([][]change, len(current)), moves: r.Moves}
	idx := map[string]int{}
	for i, s := range r.Shards {
		o.shards = append(o.shards, s.ID)
		idx[s.ID] = i
	}
	for i := len(r.Moves) - 1; i >= 0; i-- {
		m := r.Moves[i]
		from, okF := idx[m.From]
		to, okT := idx[m.To]
		if !okF || !okT {
			continue // reported by Validate
		}
		var wrong []int
		for _, rg := range m.Buckets {
			for b := rg.Lo; b <= rg.Hi && b < len(o.initial); b++ {
				if o.initial[b] != to {
					wrong = append(wrong, b)
				}
				o.initial[b] = from
				o.changes[b] = append(o.changes[b], change{at: m.Cutover, epoch: m.Epoch, shard: to})
			}
		}
		if len(wrong) > 0 {
			errs.add(pathf("moves[%d].buckets", i), 0, "after this move %s should own buckets %s, but a later move or shards[].buckets says otherwise", m.To, FormatRanges(Ranges(wrong)))
		}
	}
	for b := range o.changes {
		c := o.changes[b]
		sort.Slice(c, func(i, j int) bool { return c[i].at.Before(c[j].at) })
	}
	return o
}

func (o *ownership) ownerIndex(b int, t time.Time) int {
	owner := o.initial[b]
	for _, c := range o.changes[b] {
		if c.at.After(t) {
			break
		}
		owner = c.shard
	}
	return owner
}

// OwnerAt returns the shard that owned bucket b at instant t, and the registry epoch
// in force at t. Changes stamped exactly at a cutover belong to the new owner.
func (r *Registry) OwnerAt(b int, t time.Time) (shard string, epoch int) {
	return r.owners.shards[r.owners.ownerIndex(b, t)], r.EpochAt(t)
}

// EpochAt returns the registry epoch in force at t: the number of moves whose cutover
// is at or before t.
func (r *Registry) EpochAt(t time.Time) int {
	e := 0
	for _, m := range r.Moves {
		if !m.Cutover.After(t) {
			e = m.Epoch
		}
	}
	return e
}

// CurrentEpoch is the epoch after the last move.
func (r *Registry) CurrentEpoch() int { return len(r.Moves) }

// OwnedAt returns the bucket ranges shard owned at instant t.
func (r *Registry) OwnedAt(shard string, t time.Time) []Range {
	i := indexOf(r.owners.shards, shard)
	var bs []int
	for b := range r.owners.initial {
		if r.owners.ownerIndex(b, t) == i {
			bs = append(bs, b)
		}
	}
	return Ranges(bs)
}

// Interval is a span of buckets that one shard owned during [From, To). A zero From
// means since the beginning, a zero To means still owned.
type Interval struct {
	Shard string
	Range
	Epoch    int // the epoch at From
	From, To time.Time
}

// Intervals returns the whole ownership history as disjoint intervals, ordered by shard,
// bucket, then time. Every (bucket, instant) is covered by exactly one interval. It is the
// source of the dbt ownership seed and of the ownership filters in extract and dq.
func (r *Registry) Intervals() []Interval {
	type key struct {
		shard    int
		epoch    int
		from, to time.Time
	}
	spans := map[key][]int{}
	for b := range r.owners.initial {
		owner, from, epoch := r.owners.initial[b], time.Time{}, 0
		for _, c := range r.owners.changes[b] {
			spans[key{owner, epoch, from, c.at}] = append(spans[key{owner, epoch, from, c.at}], b)
			owner, from, epoch = c.shard, c.at, c.epoch
		}
		spans[key{owner, epoch, from, time.Time{}}] = append(spans[key{owner, epoch, from, time.Time{}}], b)
	}
	var out []Interval
	for k, bs := range spans {
		for _, rg := range Ranges(bs) {
			out = append(out, Interval{Shard: r.owners.shards[k.shard], Range: rg, Epoch: k.epoch, From: k.from, To: k.to})
		}
	}
	sort.Slice(out, func(i, j int) bool {
		a, b := out[i], out[j]
		if a.Shard != b.Shard {
			return a.Shard < b.Shard
		}
		if a.Lo != b.Lo {
			return a.Lo < b.Lo
		}
		return a.From.Before(b.From)
	})
	return out
}

// ShardIntervals returns the intervals of one shard.
func (r *Registry) ShardIntervals(shard string) []Interval {
	var out []Interval
	for _, iv := range r.Intervals() {
		if iv.Shard == shard {
			out = append(out, iv)
		}
	}
	return out
}

// Owns reports whether shard owned bucket b at instant t.
func (r *Registry) Owns(shard string, b int, t time.Time) bool {
	if b < 0 || b >= len(r.owners.initial) {
		return false
	}
	return r.owners.shards[r.owners.ownerIndex(b, t)] == shard
}

func indexOf(xs []string, x string) int {
	for i, v := range xs {
		if v == x {
			return i
		}
	}
	return -1
}

// Owned is Owns and EpochAt together: whether shard owned bucket b at instant t, and
// the epoch in force at t, which a landed row records as _registry_epoch
// (landing.Ownership).
func (r *Registry) Owned(shard string, b int, t time.Time) (epoch int, ok bool) {
	return r.EpochAt(t), r.Owns(shard, b, t)
}

package registry

import (
	"sort"
	"time"
)

// Ownership is judged per shard, on the shard's own clock (docs/decisions/0017).
//
// A bucket's history is a sequence of spans: shard S owned bucket b during [From, To),
// where both bounds are instants of S's own clock (the updated_at its trigger stamps,
// the commit times of its transactions). A move ends the source's span at the source's
// fence marker and begins the target's span at the target's switch marker; the two
// markers are written by `shardctl move cutover` on each shard, each from that shard's
// own clock, and the fence in between guarantees that no change to the bucket commits
// on either shard between them. So no instant of one shard's clock is ever compared
// with another shard's, and a skewed clock cannot move a change across the cutover.
//
// A move recorded by hand with one `cutover` instant (no fence) judges both shards by
// that instant; it is exact only if both clocks agree (plan flags it).
//
// A pending move (declared, not yet switched) leaves the source's span open; its target
// owns nothing by the registry alone. What its shards' fence rows say decides (ShardView),
// and the dbt seed lets the target's changes count from its previous span's end
// (Intervals): landing has already kept exactly the target's changes after its switch.
type ownership struct {
	shards []string
	spans  [][]span // bucket → its owners, in order (the first is epoch 0's)
}

// span: shards[shard] owned the bucket during [from, to) of its own clock; zero bounds
// are open. A pending span is a pending move's target: not owned by the registry alone.
type span struct {
	shard    int
	epoch    int
	from, to time.Time
	pending  bool
}

func (s span) covers(t time.Time) bool {
	return !s.pending && !t.Before(s.from) && (s.to.IsZero() || t.Before(s.to))
}

// buildOwnership derives epoch 0 by undoing the recorded moves from the current
// assignment, then replays every move into per-bucket spans. It reports a move whose
// buckets its from-shard did not own at that moment, and a span that would be empty
// (a shard giving a bucket away before its own clock says it received it).
func buildOwnership(r *Registry, current []int, errs *Errors) *ownership {
	o := &ownership{spans: make([][]span, len(current))}
	initial := append([]int(nil), current...) // bucket → shard index at epoch 0
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
			for b := rg.Lo; b <= rg.Hi && b < len(initial); b++ {
				if m.Pending() {
					// not switched: the source still owns the buckets now
					if initial[b] != from {
						wrong = append(wrong, b)
					}
					continue
				}
				if initial[b] != to {
					wrong = append(wrong, b)
				}
				initial[b] = from
			}
		}
		if len(wrong) == 0 {
			continue
		}
		if m.Pending() {
			errs.add(pathf("moves[%d].buckets", i), 0, "the move is pending (no cutover or fence yet), so %s must still own buckets %s in shards[].buckets until it is recorded", m.From, FormatRanges(Ranges(wrong)))
		} else {
			errs.add(pathf("moves[%d].buckets", i), 0, "after this move %s should own buckets %s, but a later move or shards[].buckets says otherwise", m.To, FormatRanges(Ranges(wrong)))
		}
	}
	for b := range o.spans {
		o.spans[b] = []span{{shard: initial[b]}}
	}
	for i, m := range r.Moves {
		to := idx[m.To]
		var empty []int
		for _, rg := range m.Buckets {
			for b := rg.Lo; b <= rg.Hi && b < len(o.spans); b++ {
				ss := o.spans[b]
				cur := &ss[len(ss)-1]
				if m.Pending() {
					o.spans[b] = append(ss, span{shard: to, epoch: m.Epoch, from: lastEnd(ss, to), pending: true})
					continue
				}
				end, begin := m.SourceEnd(), m.TargetBegin()
				if !end.After(cur.from) {
					empty = append(empty, b)
				}
				cur.to = end
				o.spans[b] = append(ss, span{shard: to, epoch: m.Epoch, from: begin})
			}
		}
		if len(empty) > 0 {
			errs.add(pathf("moves[%d]", i), 0, "%s gives buckets %s away at %s, not after it received them (its own clock)", m.From, FormatRanges(Ranges(empty)), m.SourceEnd().Format(time.RFC3339Nano))
		}
	}
	return o
}

// lastEnd is where shard's last span of a bucket ended (zero if it never owned it).
func lastEnd(ss []span, shard int) time.Time {
	for i := len(ss) - 1; i >= 0; i-- {
		if ss[i].shard == shard && !ss[i].pending {
			return ss[i].to
		}
	}
	return time.Time{}
}

// OwnerAt returns the shard that owned bucket b at instant t, and the registry epoch
// in force at t: the registry's view, one clock for all shards. Changes stamped exactly
// at a cutover belong to the new owner; inside a fence (between the source's marker and
// the target's) it answers the source. Only a shard's own view (Owns, ShardView) decides
// whether a change counts.
func (r *Registry) OwnerAt(b int, t time.Time) (shard string, epoch int) {
	ss := r.owners.spans[b]
	owner := ss[0].shard
	for _, s := range ss[1:] {
		if s.pending || s.from.After(t) {
			break
		}
		owner = s.shard
	}
	return r.owners.shards[owner], r.EpochAt(t)
}

// EpochAt returns the registry epoch in force at t: the number of recorded moves whose
// cutover (Move.Instant) is at or before t. Pending moves do not count.
func (r *Registry) EpochAt(t time.Time) int {
	e := 0
	for _, m := range r.Moves {
		if !m.Pending() && !m.Instant().After(t) {
			e = m.Epoch
		}
	}
	return e
}

// CurrentEpoch is the epoch after the last recorded move.
func (r *Registry) CurrentEpoch() int {
	e := 0
	for _, m := range r.Moves {
		if !m.Pending() {
			e = m.Epoch
		}
	}
	return e
}

// Pending returns the moves declared but not yet recorded (no cutover, no fence).
func (r *Registry) Pending() []Move {
	var out []Move
	for _, m := range r.Moves {
		if m.Pending() {
			out = append(out, m)
		}
	}
	return out
}

// OwnedAt returns the bucket ranges shard owned at instant t of its own clock (the
// registry alone: a pending move's target owns nothing yet).
func (r *Registry) OwnedAt(shard string, t time.Time) []Range {
	i := indexOf(r.owners.shards, shard)
	var bs []int
	for b, ss := range r.owners.spans {
		for _, s := range ss {
			if s.shard == i && s.covers(t) {
				bs = append(bs, b)
				break
			}
		}
	}
	return Ranges(bs)
}

// Interval is a span of buckets that one shard owned during [From, To) of its own
// clock. A zero From means since the beginning, a zero To means still owned. Pending
// marks a pending move's target: it owns nothing by the registry alone (ShardIntervals
// leaves it out), but the dbt seed counts what landing kept of it (Intervals).
type Interval struct {
	Shard string
	Range
	Epoch    int // the epoch of the move that gave the shard the buckets (0: the initial assignment)
	From, To time.Time
	Pending  bool
}

// Intervals returns the whole ownership history as intervals, ordered by shard, bucket,
// then time: the source of the dbt seed shard_ownership. One shard's intervals never
// overlap. Across shards they share no instant except through a pending move, whose
// target's interval (Pending) starts where that shard's last span of the buckets ended:
// landing keeps only the target's changes after its own switch marker, so the seed may
// count every landed change of it (docs/decisions/0017).
func (r *Registry) Intervals() []Interval {
	return r.owners.intervals(func(span) bool { return true })
}

// ShardIntervals returns the intervals of one shard by the registry alone (no pending
// target intervals): the ownership filter of extract and dq for a shard without fences.
func (r *Registry) ShardIntervals(shard string) []Interval {
	i := indexOf(r.owners.shards, shard)
	return r.owners.intervals(func(s span) bool { return s.shard == i && !s.pending })
}

func (o *ownership) intervals(keep func(span) bool) []Interval {
	type key struct {
		shard    int
		epoch    int
		from, to time.Time
		pending  bool
	}
	spans := map[key][]int{}
	for b, ss := range o.spans {
		for _, s := range ss {
			if keep(s) {
				k := key{s.shard, s.epoch, s.from, s.to, s.pending}
				spans[k] = append(spans[k], b)
			}
		}
	}
	var out []Interval
	for k, bs := range spans {
		for _, rg := range Ranges(bs) {
			out = append(out, Interval{Shard: o.shards[k.shard], Range: rg, Epoch: k.epoch, From: k.from, To: k.to, Pending: k.pending})
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

// Owns reports whether shard owned bucket b at instant t of its own clock, by the
// registry alone.
func (r *Registry) Owns(shard string, b int, t time.Time) bool {
	if b < 0 || b >= len(r.owners.spans) {
		return false
	}
	i := indexOf(r.owners.shards, shard)
	for _, s := range r.owners.spans[b] {
		if s.shard == i && s.covers(t) {
			return true
		}
	}
	return false
}

// Owned reports whether shard owned bucket b at instant t (Owns) and the epoch to
// record with the change (EpochAt(t)).
func (r *Registry) Owned(shard string, b int, t time.Time) (epoch int, ok bool) {
	return r.EpochAt(t), r.Owns(shard, b, t)
}

func indexOf(xs []string, x string) int {
	for i, v := range xs {
		if v == x {
			return i
		}
	}
	return -1
}

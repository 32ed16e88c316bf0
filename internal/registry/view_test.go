package registry

import (
	"strings"
	"testing"
	"time"
)

// fenced: buckets 4-7 moved a → b with per-shard markers; a's clock runs 2 s ahead of b's,
// so a's marker (10:00:02) is "after" b's (10:00:00.5) though a stopped writing first.
const fencedMoves = `
moves:
  - epoch: 1
    buckets: ["4-7"]
    from: a
    to: b
    fence:
      from: {at: 2026-01-01T10:00:02.000001Z, lsn: 0/16B3748}
      to: {at: 2026-01-01T10:00:00.500002Z, lsn: 0/3000060}
`

func fenced(t *testing.T) *Registry {
	t.Helper()
	text := strings.Replace(base, `buckets: ["0-7"]`, `buckets: ["0-3"]`, 1)
	text = strings.Replace(text, `buckets: ["8-15"]`, `buckets: ["4-15"]`, 1) + fencedMoves
	r, err := Check(strings.NewReader(text))
	if err != nil {
		t.Fatalf("Check: %v", err)
	}
	return r
}

// Each shard is judged by its own marker on its own clock: a change on b stamped after
// b's marker counts even though a's clock says the cutover is 1.5 s later, and a change
// on a stamped just before a's marker counts even though b's clock has passed it.
func TestFencedMoveJudgesEachShardByItsOwnMarker(t *testing.T) {
	r := fenced(t)
	aMark := time.Date(2026, 1, 1, 10, 0, 2, 1000, time.UTC)
	bMark := time.Date(2026, 1, 1, 10, 0, 0, 500002000, time.UTC)
	cases := []struct {
		shard string
		at    time.Time
		want  bool
	}{
		{"a", aMark.Add(-time.Microsecond), true},
		{"a", aMark, false},
		{"a", bMark, true},
		{"b", bMark, true},
		{"b", bMark.Add(-time.Microsecond), false}, // a copy made before the switch
		{"b", aMark.Add(-time.Second), true},       // after b's marker, before a's: b's own clock decides
	}
	for _, c := range cases {
		if got := r.Owns(c.shard, 5, c.at); got != c.want {
			t.Errorf("Owns(%s, 5, %s) = %v, want %v", c.shard, c.at.Format(time.RFC3339Nano), got, c.want)
		}
	}
	if r.Owns("a", 2, aMark.Add(time.Hour)) != true || r.Owns("b", 2, bMark) {
		t.Error("bucket 2 did not move")
	}
	if e := r.EpochAt(aMark); e != 1 {
		t.Errorf("EpochAt(a's marker) = %d, want 1", e)
	}
	ivs := r.ShardIntervals("b")
	var got []string
	for _, iv := range ivs {
		got = append(got, iv.Range.String()+"@"+iv.From.Format(time.RFC3339Nano))
	}
	if strings.Join(got, " ") != "4-7@2026-01-01T10:00:00.500002Z 8-15@0001-01-01T00:00:00Z" {
		t.Errorf("b's intervals: %v", got)
	}
}

const pendingMove = `
  - epoch: 2
    buckets: ["12-15"]
    from: b
    to: a
`

// A pending move: the source owns on; the target owns nothing by the registry alone;
// the shards' own markers decide; the seed view lets the target count from where its
// last span ended.
func TestPendingMove(t *testing.T) {
	text := strings.Replace(base, `buckets: ["0-7"]`, `buckets: ["0-3"]`, 1)
	text = strings.Replace(text, `buckets: ["8-15"]`, `buckets: ["4-15"]`, 1) + fencedMoves + pendingMove
	r, err := Check(strings.NewReader(text))
	if err != nil {
		t.Fatalf("Check: %v", err)
	}
	later := time.Date(2026, 3, 1, 0, 0, 0, 0, time.UTC)
	if !r.Owns("b", 13, later) || r.Owns("a", 13, later) {
		t.Error("pending: b owns on and a owns nothing by the registry alone")
	}
	if len(r.Pending()) != 1 || r.CurrentEpoch() != 1 || r.EpochAt(later) != 1 {
		t.Errorf("pending moves %d, current epoch %d, epoch at %s %d", len(r.Pending()), r.CurrentEpoch(), later, r.EpochAt(later))
	}
	var pendingTo *Interval
	for _, iv := range r.Intervals() {
		if iv.Pending {
			if pendingTo != nil {
				t.Fatalf("two pending intervals: %+v, %+v", *pendingTo, iv)
			}
			pendingTo = &iv
		}
	}
	if pendingTo == nil || pendingTo.Shard != "a" || pendingTo.Range != (Range{12, 15}) || pendingTo.Epoch != 2 || !pendingTo.From.IsZero() || !pendingTo.To.IsZero() {
		t.Errorf("pending interval: %+v", pendingTo)
	}

	bFence := time.Date(2026, 2, 1, 0, 0, 3, 0, time.UTC)
	aSwitch := time.Date(2026, 2, 1, 0, 0, 1, 0, time.UTC)
	vb, err := r.ShardView("b", []ShardFence{{Epoch: 2, Role: RoleFrom, At: bFence, LSN: "0/5"}})
	if err != nil {
		t.Fatal(err)
	}
	va, err := r.ShardView("a", []ShardFence{{Epoch: 2, Role: RoleTo, At: aSwitch, LSN: "0/9"}})
	if err != nil {
		t.Fatal(err)
	}
	for _, c := range []struct {
		v    *ShardView
		b    int
		at   time.Time
		want bool
	}{
		{vb, 13, bFence.Add(-time.Microsecond), true},
		{vb, 13, bFence, false},
		{vb, 9, later, true},
		{va, 13, aSwitch, true},
		{va, 13, aSwitch.Add(-time.Microsecond), false},
		{va, 5, later, false}, // moved away from a by move 1
		{va, 2, later, true},
	} {
		if got := c.v.Owns(c.b, c.at); got != c.want {
			t.Errorf("%s view: Owns(%d, %s) = %v, want %v", c.v.Shard(), c.b, c.at.Format(time.RFC3339Nano), got, c.want)
		}
	}
	if _, ok := va.Owned("b", 13, later); ok {
		t.Error("a's view answered for b")
	}
	if got := FormatRanges(va.OwnedAt(later)); got != "0-3,12-15" {
		t.Errorf("a owns %s after the switch, want 0-3,12-15", got)
	}
	// a fence row the registry cannot explain is an error naming the move
	if _, err := r.ShardView("a", []ShardFence{{Epoch: 2, Role: RoleFrom, At: aSwitch}}); err == nil || !strings.Contains(err.Error(), "move 2 (b → a)") {
		t.Errorf("wrong role: %v", err)
	}
	if _, err := r.ShardView("a", []ShardFence{{Epoch: 7, Role: RoleTo}}); err == nil || !strings.Contains(err.Error(), "epoch 7") {
		t.Errorf("unknown epoch: %v", err)
	}
	// markers of a recorded move are the registry's business: the view ignores them
	v1, err := r.ShardView("b", []ShardFence{{Epoch: 1, Role: RoleTo, At: later}})
	if err != nil || !v1.Owns(5, time.Date(2026, 1, 1, 10, 0, 1, 0, time.UTC)) {
		t.Errorf("recorded move judged by the shard's row: %v", err)
	}
}

func TestMoveFenceRules(t *testing.T) {
	text := strings.Replace(base, `buckets: ["0-7"]`, `buckets: ["0-3"]`, 1)
	text = strings.Replace(text, `buckets: ["8-15"]`, `buckets: ["4-15"]`, 1)
	cases := []struct{ name, moves, want string }{
		{"both", strings.Replace(fencedMoves, "    fence:", "    cutover: 2026-01-01T00:00:00Z\n    fence:", 1), "moves[0].cutover: set either cutover"},
		{"bad lsn", strings.Replace(fencedMoves, "0/16B3748", "16B3748", 1), `moves[0].fence.from.lsn: "16B3748" is not a WAL position`},
		{"no at", strings.Replace(fencedMoves, "at: 2026-01-01T10:00:00.500002Z, ", "", 1), "moves[0].fence.to.at: required"},
		{"pending first", "\nmoves:" + strings.Replace(pendingMove, "epoch: 2", "epoch: 1", 1) + strings.Replace(fencedMoves[len("\nmoves:\n"):], "epoch: 1", "epoch: 2", 1),
			"a pending move (no cutover or fence) must come after every recorded move"},
		{"pending switched in shards", fencedMoves + strings.Replace(pendingMove, `["12-15"]`, `["0-3"]`, 1), "the move is pending"},
		{"two pending", fencedMoves + pendingMove + strings.Replace(strings.Replace(pendingMove, "epoch: 2", "epoch: 3", 1), `["12-15"]`, `["14"]`, 1), "moves[1] is pending on buckets of this move too"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			msgs := checkText(t, text+c.moves)
			if !strings.Contains(strings.Join(msgs, "\n"), c.want) {
				t.Errorf("want %q, got:\n%s", c.want, strings.Join(msgs, "\n"))
			}
		})
	}
	// a shard that gives buckets away before its own clock says it received them
	back := strings.Replace(base, `buckets: ["0-7"]`, `buckets: ["0-7"]`, 1) + fencedMoves + `
  - epoch: 2
    buckets: ["4-7"]
    from: b
    to: a
    fence:
      from: {at: 2026-01-01T10:00:00.1Z, lsn: 0/3000100}
      to: {at: 2026-01-01T10:00:05Z, lsn: 0/16B4000}
`
	msgs := checkText(t, back)
	if !strings.Contains(strings.Join(msgs, "\n"), "not after moves[0]'s cutover") {
		t.Errorf("got %v", msgs)
	}
}

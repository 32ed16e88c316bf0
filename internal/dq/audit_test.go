package dq

import (
	"os"
	"strings"
	"testing"
	"time"

	"github.com/shopsphere/shardflow/internal/registry"
)

// auditRegistry: committed shards.yaml, with move 2 (buckets 1024-1535, s01 → s02)
// recorded by the fence markers given.
func auditRegistry(t *testing.T, from, to time.Time) *registry.Registry {
	t.Helper()
	text := committedWithMove(t, from, to)
	r, err := registry.Check(strings.NewReader(text))
	if err != nil {
		t.Fatal(err)
	}
	return r
}

var (
	sMark = time.Date(2026, 12, 2, 10, 0, 0, 0, time.UTC)           // s01's marker, its clock
	tMark = time.Date(2026, 12, 2, 10, 0, 0, 600_000_000, time.UTC) // s02's marker, its clock
)

// The live rows around a correct switch: s01 stopped writing before its marker, s02's
// copies carry s01's stamps, s02 wrote after its marker.
func liveAround() (src, dst []movedRow) {
	src = []movedRow{
		{"a", 1, 1100, sMark.Add(-3 * time.Second)},
		{"b", 2, 1101, sMark.Add(-900 * time.Millisecond)}, // the last write before the fence
		{"c", 4, 1102, sMark.Add(-10 * time.Minute)},
	}
	dst = []movedRow{
		{"a", 1, 1100, sMark.Add(-3 * time.Second)},        // copy
		{"b", 3, 1101, tMark.Add(1500 * time.Millisecond)}, // changed after the switch
		{"c", 4, 1102, sMark.Add(-10 * time.Minute)},       // copy
		{"d", 1, 1103, tMark.Add(200 * time.Millisecond)},  // new after the switch
	}
	return
}

func TestJudgeMove(t *testing.T) {
	src, dst := liveAround()
	cases := []struct {
		name     string
		from, to time.Time // the markers shards.yaml records
		src, dst []movedRow
		want     string // "" = PASS, else a substring of the failure
	}{
		{"exact", sMark, tMark, src, dst, ""},
		// the target's marker recorded 2 s late: its first writes look like copies
		{"target marker late", sMark, tMark.Add(2 * time.Second), src, dst, "dropped by the ownership filter and held nowhere else (b v3"},
		// the source's marker recorded 2 s early: its last write is owned by no one
		{"source marker early", sMark.Add(-2 * time.Second), tMark, src, dst, "stamped at or after its marker, which the ownership filter drops from its history (b v2 bucket 1101 at 2026-12-02T09:59:59.1Z: a newer v3 on s02"},
		// the target's marker recorded early: copies counted from both shards
		{"target marker early", sMark, sMark.Add(-5 * time.Second), src, dst, "counted twice (a v1"},
		// a write on the source after its fence (the fence not honoured)
		{"write after the fence", sMark, tMark, append(src, movedRow{"e", 1, 1104, sMark.Add(time.Second)}), dst, "(e v1 bucket 1104 at 2026-12-02T10:00:01Z: lost"},
		// the slow clock, on a hand-recorded single cutover: v2 on the target
		// stamped 1 s before the recorded instant, v1 only on the source
		{"slow target clock", tMark, tMark, []movedRow{{"k", 1, 1105, tMark.Add(-time.Minute)}},
			[]movedRow{{"k", 2, 1105, tMark.Add(-time.Second)}}, "dropped by the ownership filter and held nowhere else (k v2"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			reg := auditRegistry(t, c.from, c.to)
			r := judgeMove(reg, reg.Moves[1], "orders", c.src, c.dst, "move 2")
			if c.want == "" {
				if r.Status != Pass {
					t.Errorf("want PASS, got %s: %s", r.Status, r.Detail)
				}
				return
			}
			if r.Status != Fail || !strings.Contains(r.Detail, c.want) {
				t.Errorf("want FAIL with %q, got %s: %s", c.want, r.Status, r.Detail)
			}
		})
	}
}

// committedWithMove is shards.yaml with move 2 recorded by the markers given (one
// instant for both: a hand-recorded cutover).
func committedWithMove(t *testing.T, from, to time.Time) string {
	t.Helper()
	b, err := os.ReadFile("../../shards.yaml")
	if err != nil {
		t.Fatal(err)
	}
	text := strings.Replace(string(b), `buckets: ["1024-2047"]`, `buckets: ["1536-2047"]`, 1)
	text = strings.Replace(text, `buckets: ["2048-3071"]`, `buckets: ["1024-1535", "2048-3071"]`, 1)
	rec := "    fence:\n      from: {at: " + from.Format(time.RFC3339Nano) + ", lsn: 0/1000}\n      to: {at: " + to.Format(time.RFC3339Nano) + ", lsn: 0/2000}\n"
	if from.Equal(to) {
		rec = "    cutover: " + from.Format(time.RFC3339Nano) + "\n"
	}
	move := "  - epoch: 2\n    buckets: [\"1024-1535\"]\n    from: s01\n    to: s02\n" + rec
	return strings.Replace(text, "    cutover: 2026-06-01T00:00:00Z\n", "    cutover: 2026-06-01T00:00:00Z\n"+move, 1)
}

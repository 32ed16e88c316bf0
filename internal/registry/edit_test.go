package registry

import (
	"os"
	"strings"
	"testing"
	"time"
)

// Declaring a split and recording it edit only the lines they must: every comment and
// blank line of the committed file stays, and each result is a valid registry.
func TestDeclareAndRecordMove(t *testing.T) {
	src, err := os.ReadFile("../../shards.yaml")
	if err != nil {
		t.Fatal(err)
	}
	s04 := &Shard{ID: "s04", Connection: Connection{
		Extract:     SecretRef{Env: "SHARDFLOW_S04_EXTRACT_DSN", K8sSecret: "shard-s04", K8sKey: "extract-dsn"},
		Replication: SecretRef{Env: "SHARDFLOW_S04_REPLICATION_DSN", K8sSecret: "shard-s04", K8sKey: "replication-dsn"},
		Admin:       SecretRef{Env: "SHARDFLOW_S04_ADMIN_DSN", K8sSecret: "shard-s04", K8sKey: "admin-dsn"},
	}}
	m := Move{Epoch: 2, Buckets: []Range{{1536, 2047}}, From: "s01", To: "s04"}
	declared, r, err := DeclareMove(src, m, s04)
	if err != nil {
		t.Fatal(err)
	}
	if p := r.Pending(); len(p) != 1 || p[0].To != "s04" || r.Owns("s04", 1600, time.Now()) {
		t.Fatalf("declared: pending %v", p)
	}
	if s, _ := r.Shard("s04"); s.State != StateOnboarding || len(s.Buckets) != 0 {
		t.Errorf("s04 declared as %+v", s)
	}
	assertOnlyAdded(t, string(src), string(declared))

	f := Fence{From: Marker{time.Date(2026, 12, 2, 10, 0, 1, 123456000, time.UTC), "0/1A2B3C4"},
		To: Marker{time.Date(2026, 12, 2, 10, 0, 0, 987654000, time.UTC), "0/5D6E7F0"}}
	recorded, r2, err := RecordMove(declared, 2, f)
	if err != nil {
		t.Fatal(err)
	}
	if len(r2.Pending()) != 0 || r2.CurrentEpoch() != 2 || *r2.Moves[1].Fence != f {
		t.Fatalf("recorded: %+v", r2.Moves[1])
	}
	s01, _ := r2.Shard("s01")
	got04, _ := r2.Shard("s04")
	if FormatRanges(s01.Buckets) != "1024-1535" || FormatRanges(got04.Buckets) != "1536-2047" || got04.State != StateActive {
		t.Errorf("after recording: s01 %s, s04 %s %s", FormatRanges(s01.Buckets), FormatRanges(got04.Buckets), got04.State)
	}
	if !r2.Owns("s04", 1600, f.To.At) || r2.Owns("s04", 1600, f.To.At.Add(-time.Microsecond)) || !r2.Owns("s01", 1600, f.From.At.Add(-time.Microsecond)) {
		t.Error("recorded ownership is not by the markers")
	}
	for _, want := range []string{
		`    buckets: ["1024-1535"]`,
		"      from: {at: 2026-12-02T10:00:01.123456Z, lsn: 0/1A2B3C4}",
		`    buckets: ["1536-2047"]`,
	} {
		if !strings.Contains(string(recorded), want+"\n") {
			t.Errorf("recorded file lacks %q:\n%s", want, recorded)
		}
	}
	if strings.Contains(string(recorded), "# pending:") {
		t.Error("the pending comment stayed")
	}
	if _, _, err := RecordMove(recorded, 2, f); err == nil || !strings.Contains(err.Error(), "not a pending move") {
		t.Errorf("recording twice: %v", err)
	}
}

// assertOnlyAdded checks that every line of a is in b, in order.
func assertOnlyAdded(t *testing.T, a, b string) {
	t.Helper()
	bl := strings.Split(b, "\n")
	j := 0
	for _, l := range strings.Split(a, "\n") {
		for j < len(bl) && bl[j] != l {
			j++
		}
		if j == len(bl) {
			t.Fatalf("line %q of the original is gone", l)
		}
		j++
	}
}

package shardctl

import (
	"bytes"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/shopsphere/shardflow/internal/registry"
)

func TestInitGolden(t *testing.T) {
	base, err := os.ReadFile("../../shards.yaml")
	if err != nil {
		t.Fatal(err)
	}
	got, err := GenerateRegistry(base, 16, 0)
	if err != nil {
		t.Fatal(err)
	}
	golden(t, "init-16.yaml", got)
}

// Every generated registry is valid, splits the buckets evenly, has no moves and keeps
// the base's tables and settings.
func TestInitSplitsEvenly(t *testing.T) {
	base, err := os.ReadFile("../../shards.yaml")
	if err != nil {
		t.Fatal(err)
	}
	committed, err := registry.Check(bytes.NewReader(base))
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct{ shards, buckets int }{{1, 0}, {3, 0}, {4, 0}, {7, 0}, {16, 0}, {64, 0}, {100, 0}, {5, 1000}} {
		text, err := GenerateRegistry(base, tc.shards, tc.buckets)
		if err != nil {
			t.Fatalf("%d shards: %v", tc.shards, err)
		}
		r, err := registry.Check(bytes.NewReader(text))
		if err != nil {
			t.Fatalf("%d shards: %v", tc.shards, err)
		}
		b := 4096
		if tc.buckets > 0 {
			b = tc.buckets
		}
		if len(r.Shards) != tc.shards || r.Routing.Buckets != b || len(r.Moves) != 0 {
			t.Errorf("%d shards: got %d shards, %d buckets, %d moves", tc.shards, len(r.Shards), r.Routing.Buckets, len(r.Moves))
		}
		for _, s := range r.Shards {
			n := 0
			for _, rg := range r.OwnedAt(s.ID, time.Now()) {
				n += rg.Hi - rg.Lo + 1
			}
			if n < b/tc.shards || n > b/tc.shards+1 {
				t.Errorf("%d shards: %s owns %d buckets", tc.shards, s.ID, n)
			}
			if s.Connection.Extract.Env != "SHARDFLOW_"+strings.ToUpper(s.ID)+"_EXTRACT_DSN" {
				t.Errorf("%s: extract env %q", s.ID, s.Connection.Extract.Env)
			}
		}
		if len(r.Tables) != len(committed.Tables) || r.Extract != committed.Extract || r.SLA != committed.SLA || len(r.Environments) != len(committed.Environments) {
			t.Errorf("%d shards: tables or settings differ from shards.yaml", tc.shards)
		}
	}
	// Four shards own today what the committed registry's shards own after its move.
	text, _ := GenerateRegistry(base, 4, 0)
	four, _ := registry.Check(bytes.NewReader(text))
	now := time.Now()
	for b := 0; b < 4096; b++ {
		x, _ := four.OwnerAt(b, now)
		y, _ := committed.OwnerAt(b, now)
		if x != y {
			t.Fatalf("bucket %d: generated owner %s, shards.yaml %s", b, x, y)
		}
	}
	for _, n := range []int{0, -1, 1001} {
		if _, err := GenerateRegistry(base, n, 0); err == nil {
			t.Errorf("--shards %d accepted", n)
		}
	}
	if _, err := GenerateRegistry(base, 10, 8); err == nil {
		t.Error("10 shards over 8 buckets accepted")
	}
}

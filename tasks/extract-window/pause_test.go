package main

import (
	"context"
	"strings"
	"testing"

	"github.com/shopsphere/shardflow/internal/extract/extracttest"
	"github.com/shopsphere/shardflow/internal/objstore/dir"
	"github.com/shopsphere/shardflow/internal/pause"
)

// TestPausedShardIsNotTouched: a paused shard's window exits 99 (Airflow: skipped)
// without connecting to the shard, which may be down for its maintenance; resumed, the
// same window lands.
func TestPausedShardIsNotTouched(t *testing.T) {
	ctx := context.Background()
	e := newEnv(t, "1000")
	w := windowAt("2026-03-10T10:00Z", e.reg.Extract.Window.Duration)
	custs := extracttest.CustomersOwnedBy(e.reg, "s01", w.Start, 10, 1)
	if err := extracttest.Fill(ctx, e.admin("s01"), e.reg, extracttest.Spec{Table: "orders", Rows: 50, From: w.Start, To: w.End, Customers: custs, Seed: "p"}); err != nil {
		t.Fatal(err)
	}
	store := dir.Store{Root: e.lake}
	if _, err := pause.Set(ctx, store, pause.Pause{Shard: "s01", Reason: "maintenance", By: "test"}); err != nil {
		t.Fatal(err)
	}
	if err := e.fleet.StopShard(ctx, "s01"); err != nil {
		t.Fatal(err)
	}
	code, out := e.extract("--shard", "s01", "--table", "orders", "--window", "2026-03-10T10:00Z")
	if _, man := e.landed("orders", "s01", w); code != 99 || man || !strings.Contains(out, "shard s01 is paused by test") || strings.Contains(out, "connect") {
		t.Fatalf("paused and stopped s01: exit %d, landed %v, want 99 without a connection attempt:\n%s", code, man, out)
	}
	if err := e.fleet.StartShard(ctx, "s01"); err != nil {
		t.Fatal(err)
	}
	if _, err := pause.Clear(ctx, store, "s01"); err != nil {
		t.Fatal(err)
	}
	code, out = e.extract("--shard", "s01", "--table", "orders", "--window", "2026-03-10T10:00Z")
	if _, man := e.landed("orders", "s01", w); code != 0 || !man {
		t.Fatalf("resumed s01: exit %d, landed %v:\n%s", code, man, out)
	}
}

package main

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/shopsphere/shardflow/internal/extract/extracttest"
	"github.com/shopsphere/shardflow/internal/fleet/fleettest"
	"github.com/shopsphere/shardflow/internal/landing"
)

// TestStandbyConnection: a shard whose shards.yaml entry names a hot standby
// (connection.standby) has its windows read there, after the standby replayed past
// the closed-window check on the primary, and lands the same bytes a primary read
// lands; with the standby's variable unset the task says which one (exit 2), and with
// the standby down it exits 75 naming it.
func TestStandbyConnection(t *testing.T) {
	ctx := context.Background()
	e := newEnv(t, "1000")
	w := windowAt("2026-03-10T10:00Z", e.reg.Extract.Window.Duration)
	custs := extracttest.CustomersOwnedBy(e.reg, "s01", w.Start, 10, 1)
	if err := extracttest.Fill(ctx, e.admin("s01"), e.reg, extracttest.Spec{Table: "orders", Rows: 300, From: w.Start, To: w.End, Customers: custs, Seed: "sb"}); err != nil {
		t.Fatal(err)
	}
	args := []string{"--shard", "s01", "--table", "orders", "--window", "2026-03-10T10:00Z"}
	key := landing.BatchKey("orders", "s01", w.Start, w.End)
	if code, out := e.extract(args...); code != 0 {
		t.Fatalf("from the primary: exit %d\n%s", code, out)
	}
	fromPrimary, err := os.ReadFile(filepath.Join(e.lake, key))
	if err != nil {
		t.Fatal(err)
	}

	sb := fleettest.StartStandby(t, e.fleet, "s01")
	b, err := os.ReadFile(e.regPath)
	if err != nil {
		t.Fatal(err)
	}
	text := strings.Replace(string(b), "      admin: {env: SHARDFLOW_S01_ADMIN_DSN, k8s_secret: shard-s01, k8s_key: admin-dsn}\n",
		"      admin: {env: SHARDFLOW_S01_ADMIN_DSN, k8s_secret: shard-s01, k8s_key: admin-dsn}\n      standby: {env: SHARDFLOW_S01_STANDBY_DSN, k8s_secret: shard-s01, k8s_key: standby-dsn}\n", 1)
	if text == string(b) {
		t.Fatal("could not add a standby to s01 in the test's shards.yaml")
	}
	if err := os.WriteFile(e.regPath, []byte(text), 0o644); err != nil {
		t.Fatal(err)
	}
	if code, out := e.extract(args...); code != 2 || !strings.Contains(out, "SHARDFLOW_S01_STANDBY_DSN (its standby DSN, connection.standby) is not set") {
		t.Fatalf("standby named, its variable unset: exit %d, want 2 naming the variable\n%s", code, out)
	}
	vars := e.vars
	e.vars = append(vars, "SHARDFLOW_S01_STANDBY_DSN="+sb.ExtractDSN)
	if err := os.Remove(filepath.Join(e.lake, key)); err != nil {
		t.Fatal(err)
	}
	code, out := e.extract(args...)
	if code != 0 || !strings.Contains(out, "window read from the standby") || !strings.Contains(out, "replay_lsn=") {
		t.Fatalf("from the standby: exit %d, want 0 and the replay wait logged\n%s", code, out)
	}
	fromStandby, err := os.ReadFile(filepath.Join(e.lake, key))
	if err != nil {
		t.Fatal(err)
	}
	if string(fromStandby) != string(fromPrimary) {
		t.Fatalf("the window read at the standby (%d bytes) differs from the primary's (%d bytes)", len(fromStandby), len(fromPrimary))
	}
	e.vars = append(vars, "SHARDFLOW_S01_STANDBY_DSN=postgres://shardflow_extract@127.0.0.1:1/shardflow?connect_timeout=2")
	if code, out := e.extract(args...); code != 75 || !strings.Contains(out, "connect to the shard's standby (SHARDFLOW_S01_STANDBY_DSN)") {
		t.Fatalf("standby down: exit %d, want 75 naming it\n%s", code, out)
	}
}

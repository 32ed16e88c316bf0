package main

import (
	"bytes"
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/shopsphere/shardflow/internal/exitcode"
	"github.com/shopsphere/shardflow/internal/extract"
	"github.com/shopsphere/shardflow/internal/extract/extracttest"
	"github.com/shopsphere/shardflow/internal/fleet/fleettest"
	"github.com/shopsphere/shardflow/internal/landing"
	"github.com/shopsphere/shardflow/internal/load/loadtest"
	"github.com/shopsphere/shardflow/internal/metrics"
	objdir "github.com/shopsphere/shardflow/internal/objstore/dir"
	"github.com/shopsphere/shardflow/internal/tokenize"
	"github.com/shopsphere/shardflow/internal/warehouse/duckdb"
	"github.com/shopsphere/shardflow/internal/window"
)

const testKey = "test-tokenizer-key-0123456789abcdef"

// TestDQEndToEnd: shards → extract → landing → load → dq, on a real fleet and DuckDB.
// Everything matches: exit 0 and PASS rows in dq.dq_results. A row lost from the
// warehouse: exit 3 naming its key. A PAN in a landed file (--pci-files): exit 3 naming
// the file. An undeclared column on a shard: WARN naming shard, table and column; a
// declared one dropped: FAIL naming it. A shard down: its checks fail, the others still run.
func TestDQEndToEnd(t *testing.T) {
	ctx := context.Background()
	dir := t.TempDir()
	lake, whPath := filepath.Join(dir, "lake"), filepath.Join(dir, "wh.duckdb")
	b, err := os.ReadFile("../../shards.yaml")
	if err != nil {
		t.Fatal(err)
	}
	text := strings.Replace(string(b), "path: var/lake", "path: "+lake, 1)
	text = strings.Replace(text, "path: var/warehouse.duckdb", "path: "+whPath, 1)
	regPath := filepath.Join(dir, "shards.yaml")
	if err := os.WriteFile(regPath, []byte(text), 0o644); err != nil {
		t.Fatal(err)
	}
	reg := fleettest.Load(t, regPath)
	f := fleettest.Start(t, reg)
	env := map[string]string{"SHARDFLOW_REGISTRY": regPath, "SHARDFLOW_ENV": "local"}

	w := window.Window{Start: time.Date(2026, 3, 10, 10, 0, 0, 0, time.UTC)}
	w.End = w.Start.Add(reg.Extract.Window.Duration)
	tok, _ := tokenize.New(reg.Tokenizer.KeyID, []byte(testKey))
	for _, s := range f.Shards {
		env[s.ExtractEnv] = s.ExtractDSN
		admin, err := pgx.Connect(ctx, s.AdminDSN)
		if err != nil {
			t.Fatal(err)
		}
		custs := extracttest.CustomersOwnedBy(reg, s.ID, w.Start, 10, 1)
		for _, tb := range []string{"orders", "payments"} {
			if err := extracttest.Fill(ctx, admin, reg, extracttest.Spec{Table: tb, Rows: 300, From: w.Start, To: w.End, Customers: custs, Seed: s.ID}); err != nil {
				t.Fatal(err)
			}
		}
		admin.Close(ctx)
		conn, err := pgx.Connect(ctx, s.ExtractDSN)
		if err != nil {
			t.Fatal(err)
		}
		ex := &extract.Extractor{Registry: reg, Conn: conn, Store: objdir.Store{Root: lake}, Tokenizer: tok, CodeVersion: "test",
			NewWriter: landing.OpenParquet}
		for _, tb := range []string{"orders", "payments"} {
			if _, err := ex.Run(ctx, extract.Job{Shard: s.ID, Table: tb, Window: w}); err != nil {
				t.Fatal(err)
			}
		}
		conn.Close(ctx)
	}
	load := func() {
		t.Helper()
		wh, err := duckdb.Open(ctx, whPath)
		if err != nil {
			t.Fatal(err)
		}
		defer wh.Close()
		for _, tb := range []string{"orders", "payments"} {
			if _, err := loadtest.LoadLanded(ctx, wh, reg, lake, tb); err != nil {
				t.Fatal(err)
			}
		}
	}
	load()
	dq := func(args ...string) (int, string) {
		var out, errb bytes.Buffer
		err := run(ctx, args, env, &out, &errb, func(string, metrics.Run) {})
		return exitcode.Of(err), out.String() + errb.String()
	}
	where := []string{"--window", "2026-03-10T10:00Z", "--table", "orders,payments"}

	code, out := dq(append(where, "--cross-shard", "--pci-files", "--run-id", "r1", "--freshness-sla", "1000000h")...)
	if code != 0 || !strings.Contains(out, "dq run r1: PASS") {
		t.Fatalf("clean pipeline: exit %d\n%s", code, out)
	}
	wh, err := duckdb.Open(ctx, whPath)
	if err != nil {
		t.Fatal(err)
	}
	db := wh.DB()
	var n int
	if err := db.QueryRow("SELECT count(*) FROM dq.dq_results WHERE run_id = 'r1' AND check_name = 'completeness' AND status = 'PASS'").Scan(&n); err != nil || n != 8 {
		t.Fatalf("dq_results completeness PASS rows = %d (%v), want 8 (4 shards × 2 tables)", n, err)
	}
	if err := db.QueryRow("SELECT count(*) FROM dq.dq_results WHERE run_id = 'r1' AND check_name = 'schema' AND status = 'PASS'").Scan(&n); err != nil || n != 8 {
		t.Fatalf("dq_results schema PASS rows = %d (%v), want 8 (4 shards × 2 tables)", n, err)
	}
	// lose one row in the warehouse
	var lost string
	if err := db.QueryRow("SELECT order_id FROM raw.orders WHERE _shard = 's02' ORDER BY order_id LIMIT 1").Scan(&lost); err != nil {
		t.Fatal(err)
	}
	if _, err := db.Exec("DELETE FROM raw.orders WHERE order_id = ?", lost); err != nil {
		t.Fatal(err)
	}
	wh.Close()
	code, out = dq(append(where, "--run-id", "r2")...)
	if code != 3 || !strings.Contains(out, "data loss") || !strings.Contains(out, lost) || !strings.Contains(out, "dq run r2: FAIL (15 pass, 0 warn, 1 fail)") {
		t.Fatalf("lost row: exit %d\n%s", code, out)
	}

	// a card number in a landed file
	bad := landing.BatchKey("orders", "s00", w.Start.Add(-w.End.Sub(w.Start)), w.Start)
	if err := os.MkdirAll(filepath.Dir(filepath.Join(lake, bad)), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(lake, bad), []byte("not parquet 4111111111111111"), 0o644); err != nil {
		t.Fatal(err)
	}
	code, out = dq("--pci-files", "--table", "orders", "--run-id", "r3")
	if code != 3 || !strings.Contains(out, bad) || strings.Contains(out, "4111111111111111") {
		t.Fatalf("PAN in a landed file: exit %d\n%s", code, out)
	}
	_ = os.Remove(filepath.Join(lake, bad))

	// freshness: s00 receives rows two days later that no window has landed yet
	{
		s00, _ := f.Shard("s00")
		admin, err := pgx.Connect(ctx, s00.AdminDSN)
		if err != nil {
			t.Fatal(err)
		}
		later := w.Start.Add(48 * time.Hour)
		if err := extracttest.Fill(ctx, admin, reg, extracttest.Spec{Table: "orders", Rows: 10, From: later, To: later.Add(time.Minute),
			Customers: extracttest.CustomersOwnedBy(reg, "s00", later, 1, 1), Seed: "late"}); err != nil {
			t.Fatal(err)
		}
		admin.Close(ctx)
		code, out := dq("--cross-shard", "--table", "orders", "--run-id", "r5")
		stale := 0
		for _, l := range strings.Split(out, "\n") {
			if f := strings.Fields(l); len(f) > 2 && f[1] == "freshness" {
				if f[0] == "FAIL" {
					stale++
					if f[2] != "s00" || !strings.Contains(l, "47h1m6s behind the source's newest watermark (SLA 2h5m0s)") {
						t.Errorf("freshness line: %s", l)
					}
				}
			}
		}
		if code != 3 || stale != 1 {
			t.Fatalf("freshness with s00 48h behind: exit %d, %d stale shards\n%s", code, stale, out)
		}
	}

	// a column on s01 that shards.yaml does not declare: reported, naming shard, table and
	// column, not a failure; a declared one dropped on s02: a failure naming it
	alter := func(stmts map[string]string) {
		t.Helper()
		for id, stmt := range stmts {
			sh, _ := f.Shard(id)
			admin, err := pgx.Connect(ctx, sh.AdminDSN)
			if err != nil {
				t.Fatal(err)
			}
			_, err = admin.Exec(ctx, stmt)
			admin.Close(ctx)
			if err != nil {
				t.Fatal(err)
			}
		}
	}
	alter(map[string]string{"s01": "ALTER TABLE payments ADD COLUMN card_pan text", "s02": "ALTER TABLE payments DROP COLUMN card_holder"})
	code, out = dq("--window", "2026-03-10T10:00Z", "--table", "payments", "--run-id", "r6")
	var warned, failed string
	for _, l := range strings.Split(out, "\n") {
		if f := strings.Fields(l); len(f) > 3 && f[1] == "schema" && f[3] == "payments" {
			switch {
			case f[0] == "WARN" && f[2] == "s01":
				warned = l
			case f[0] == "FAIL" && f[2] == "s02":
				failed = l
			}
		}
	}
	if code != 3 || !strings.Contains(warned, "undeclared: column card_pan (text)") || !strings.Contains(failed, "refused: column card_holder: missing on the shard") {
		t.Fatalf("schema changes on s01 and s02: exit %d, want 3 with s01 payments WARN naming card_pan and s02 payments FAIL naming card_holder\n%s", code, out)
	}
	alter(map[string]string{"s01": "ALTER TABLE payments DROP COLUMN card_pan", "s02": "ALTER TABLE payments ADD COLUMN card_holder text"})

	// a shard down: only unreachable → 75; its checks fail, the others run
	if err := f.StopShard(ctx, "s03"); err != nil {
		t.Fatal(err)
	}
	code, out = dq("--window", "2026-03-10T10:00Z", "--table", "payments", "--run-id", "r4")
	passed := 0
	for _, l := range strings.Split(out, "\n") {
		if f := strings.Fields(l); len(f) > 1 && f[0] == "PASS" && f[1] == "completeness" {
			passed++
		}
	}
	if code != 75 || !strings.Contains(out, "source_reachable") || passed != 3 {
		t.Fatalf("s03 down: exit %d\n%s", code, out)
	}
}

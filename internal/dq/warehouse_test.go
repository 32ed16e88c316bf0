package dq

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/shopsphere/shardflow/internal/extract/extracttest"
	"github.com/shopsphere/shardflow/internal/fleet/fleettest"
	"github.com/shopsphere/shardflow/internal/landing"
	"github.com/shopsphere/shardflow/internal/registry"
	"github.com/shopsphere/shardflow/internal/warehouse/duckdb"
	"github.com/shopsphere/shardflow/internal/window"
)

// openDuck opens a fresh DuckDB warehouse with the raw tables load creates (its Checker
// answers the window checksum, batch duplicates and string columns).
func openDuck(t *testing.T, reg *registry.Registry) *Warehouse {
	t.Helper()
	ctx := context.Background()
	wh, err := duckdb.Open(ctx, filepath.Join(t.TempDir(), "wh.duckdb"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { wh.Close() })
	if err := wh.Ensure(ctx, reg.Tables); err != nil {
		t.Fatal(err)
	}
	return &Warehouse{DB: wh.DB(), Dialect: landing.DuckDB, Raw: "raw", Results: "dq.dq_results", Registry: reg, Checker: wh}
}

// insertOrder is one raw.orders row as a batch file would load it (the columns dq reads).
const insertOrder = `INSERT INTO raw.orders (order_id, customer_id, bucket, status, updated_at, row_version,
	_shard, _source, _op, _commit_ts, _file, _loaded_at) VALUES (?, ?, ?, ?, ?, ?, ?, 'batch', 'r', ?, 'f', now())`

// copyToWarehouse loads the shard's owned rows of w into raw.orders as a batch file would.
func copyToWarehouse(t *testing.T, ctx context.Context, src *Source, wh *Warehouse, w window.Window) {
	t.Helper()
	rows, err := src.Conn.Query(ctx, `SELECT order_id::text, customer_id, bucket, status, updated_at, row_version FROM orders
		WHERE updated_at >= $1 AND updated_at < $2`, w.Start, w.End)
	if err != nil {
		t.Fatal(err)
	}
	defer rows.Close()
	for rows.Next() {
		var id, status string
		var cust int64
		var b int32
		var at time.Time
		var v int64
		if err := rows.Scan(&id, &cust, &b, &status, &at, &v); err != nil {
			t.Fatal(err)
		}
		if !src.Registry.Owns(src.Shard, int(b), at) {
			continue
		}
		if _, err := wh.DB.Exec(insertOrder, id, cust, b, status, at, v, src.Shard, at); err != nil {
			t.Fatal(err)
		}
	}
	if err := rows.Err(); err != nil {
		t.Fatal(err)
	}
}

// TestCompletenessDrillDown: equal sides pass; a row missing from the warehouse fails
// naming its key; a row updated on the shard since extract is "superseded" (pass with a
// note); a row loaded twice fails. Real PostgreSQL and real DuckDB.
func TestCompletenessDrillDown(t *testing.T) {
	ctx := context.Background()
	reg := fleettest.Load(t, "../../shards.yaml")
	f := fleettest.Start(t, reg)
	s00, _ := f.Shard("s00")
	admin := connect(t, s00.AdminDSN)
	w := window.Window{Start: time.Date(2026, 3, 1, 10, 0, 0, 0, time.UTC), End: time.Date(2026, 3, 1, 11, 0, 0, 0, time.UTC)}
	custs := extracttest.CustomersOwnedBy(reg, "s00", w.Start, 20, 1)
	custs = append(custs, extracttest.CustomersOwnedBy(reg, "s01", w.Start, 2, 1)...) // misrouted rows: never counted
	if err := extracttest.Fill(ctx, admin, reg, extracttest.Spec{Table: "orders", Rows: 500, From: w.Start, To: w.End, Customers: custs, Seed: "c"}); err != nil {
		t.Fatal(err)
	}
	src := &Source{Registry: reg, Shard: "s00", Conn: connect(t, s00.ExtractDSN)}
	wh := openDuck(t, reg)
	copyToWarehouse(t, ctx, src, wh, w)

	r := Completeness(ctx, src, wh, "orders", w)
	if r.Status != Pass || *r.SourceCount != *r.WarehouseCount || r.SourceChecksum != r.WarehouseChecksum || r.Detail != "" {
		t.Fatalf("equal sides: %+v", r)
	}
	if *r.SourceCount >= 500 || *r.SourceCount < 400 {
		t.Fatalf("owned rows = %d, want the ~455 owned of 500", *r.SourceCount)
	}

	// superseded: the shard updates a row after the extract (its new version is in a later window)
	var upd string
	if err := admin.QueryRow(ctx, "UPDATE orders SET status = 'paid' WHERE order_id = (SELECT order_id FROM orders WHERE bucket <= 1023 ORDER BY order_id LIMIT 1) RETURNING order_id::text").Scan(&upd); err != nil {
		t.Fatal(err)
	}
	r = Completeness(ctx, src, wh, "orders", w)
	if r.Status != Pass || !strings.Contains(r.Detail, "1 warehouse row versions superseded since extract (1 by a newer version") {
		t.Fatalf("after an update on the shard: %+v, want PASS noting 1 superseded", r)
	}

	// data loss: a row missing from the warehouse
	var lost string
	if err := wh.DB.QueryRow("SELECT order_id FROM raw.orders WHERE order_id <> ? ORDER BY order_id LIMIT 1", upd).Scan(&lost); err != nil {
		t.Fatal(err)
	}
	if _, err := wh.DB.Exec("DELETE FROM raw.orders WHERE order_id = ?", lost); err != nil {
		t.Fatal(err)
	}
	r = Completeness(ctx, src, wh, "orders", w)
	if r.Status != Fail || !strings.Contains(r.Detail, "1 source row versions missing from the warehouse (data loss): "+lost+" v1") {
		t.Fatalf("after losing %s: %+v, want FAIL naming it", lost, r)
	}

	// a duplicate load
	if _, err := wh.DB.Exec("INSERT INTO raw.orders SELECT * FROM raw.orders WHERE order_id = (SELECT max(order_id) FROM raw.orders)"); err != nil {
		t.Fatal(err)
	}
	r = Completeness(ctx, src, wh, "orders", w)
	if r.Status != Fail || !strings.Contains(r.Detail, "loaded more than once") {
		t.Fatalf("after a duplicate: %+v", r)
	}
	n, keys, err := wh.BatchDuplicates(ctx, "orders", nil)
	if err != nil || n != 1 || len(keys) != 1 || !strings.Contains(keys[0], "shard s00") {
		t.Fatalf("BatchDuplicates = %d %v %v", n, keys, err)
	}

	// results land in dq.dq_results
	r.RunID, r.CheckedAt = "test-run", time.Now()
	rep := &Report{RunID: "test-run", Results: []Result{r}}
	if err := wh.WriteResults(ctx, rep.Results); err != nil {
		t.Fatal(err)
	}
	var status, detail string
	var ws time.Time
	if err := wh.DB.QueryRow("SELECT status, detail, window_start FROM dq.dq_results WHERE run_id = 'test-run' AND check_name = 'completeness'").Scan(&status, &detail, &ws); err != nil {
		t.Fatal(err)
	}
	if status != "FAIL" || !ws.Equal(w.Start) {
		t.Fatalf("dq_results row: %s %s %s", status, ws, detail)
	}
}

// TestDuplicateLatestAndPCI: the warehouse-side cross-shard checks on DuckDB.
func TestDuplicateLatestAndPCI(t *testing.T) {
	ctx := context.Background()
	reg := fleettest.Load(t, "../../shards.yaml")
	wh := openDuck(t, reg)
	// bucket 3600 moved s02 → s03 at 2026-06-01: one version from each owner is fine
	before := time.Date(2026, 5, 1, 0, 0, 0, 0, time.UTC)
	after := time.Date(2026, 7, 1, 0, 0, 0, 0, time.UTC)
	ins := func(id, shard string, b int, at time.Time, v int64, status string) {
		t.Helper()
		if _, err := wh.DB.Exec(insertOrder, id, 1, b, status, at, v, shard, at); err != nil {
			t.Fatal(err)
		}
	}
	ins("k1", "s02", 3600, before, 1, "placed")
	ins("k1", "s03", 3600, after, 2, "paid")
	ins("k1", "s03", 3600, before, 1, "placed") // the move's copy: not owned by s03 then
	n, keys, err := wh.DuplicateLatest(ctx, "orders", nil)
	if err != nil || n != 0 {
		t.Fatalf("after a clean move: %d %v %v, want none", n, keys, err)
	}
	// the same latest version from two owners: impossible unless ownership is wrong
	ins("k2", "s02", 3600, before, 3, "placed")
	ins("k2", "s00", 5, before, 3, "placed")
	n, keys, err = wh.DuplicateLatest(ctx, "orders", nil)
	if err != nil || n != 1 || len(keys) != 1 || keys[0] != "k2" {
		t.Fatalf("DuplicateLatest = %d %v %v, want k2", n, keys, err)
	}

	// PCI: a card number in a kept text column is found, counted, never printed
	ins("k3", "s00", 5, before, 1, "note: card 4111 1111 1111 1111 used")
	res := scanWarehousePCI(ctx, wh, true, "r1", time.Now()) // these rows have no load history: a full scan
	if len(res) != len(reg.Tables) {
		t.Fatalf("PCI scan: %d results, want one per raw table: %+v", len(res), res)
	}
	for _, r := range res {
		if r.Table != "orders" {
			if r.Status != Pass {
				t.Fatalf("PCI scan of %s, which holds no rows: %+v", r.Table, r)
			}
			continue
		}
		if r.Status != Fail || !strings.Contains(r.Detail, "column status: 1 card numbers in 1 rows") {
			t.Fatalf("PCI scan of orders: %+v", r)
		}
		if strings.Contains(r.Detail, "4111") {
			t.Fatalf("the PCI finding prints the value: %s", r.Detail)
		}
	}
}

// TestWarehousePCIScanFollowsTheLoads: the hourly warehouse PCI scan reads only the
// files loaded since it last found them clean, by file identity: a leak fails every run
// until purged; a clean scan is recorded and not repeated; a file whose load committed
// late with an older _loaded_at is scanned all the same; a replaced file (new sha) is
// scanned again; a full scan reads every row, also rows no file accounts for.
func TestWarehousePCIScanFollowsTheLoads(t *testing.T) {
	ctx := context.Background()
	reg := fleettest.Load(t, "../../shards.yaml")
	wh := openDuck(t, reg)
	at := time.Date(2026, 5, 1, 10, 0, 0, 0, time.UTC)
	const pan = "card 4111 1111 1111 1111"
	load := func(file, sha string, loadedAt time.Time, statuses ...string) {
		t.Helper()
		if _, err := wh.DB.Exec("DELETE FROM raw.orders WHERE _file = ?", file); err != nil {
			t.Fatal(err)
		}
		for i, st := range statuses {
			if _, err := wh.DB.Exec(`INSERT INTO raw.orders (order_id, customer_id, bucket, status, updated_at, row_version,
				_shard, _source, _op, _commit_ts, _file, _loaded_at) VALUES (?, 1, 5, ?, ?, 1, 's00', 'batch', 'r', ?, ?, ?)`,
				fmt.Sprintf("%s-%d", file, i), st, at, at, file, loadedAt); err != nil {
				t.Fatal(err)
			}
		}
		if _, err := wh.DB.Exec(`INSERT OR REPLACE INTO raw._load_history VALUES (?, 'orders', 's00', 'batch', ?, '0', ?, ?)`, file, len(statuses), sha, loadedAt); err != nil {
			t.Fatal(err)
		}
	}
	scan := func(full bool) Result {
		t.Helper()
		for _, r := range scanWarehousePCI(ctx, wh, full, "r", at) {
			if r.Table == "orders" {
				if strings.Contains(r.Detail, "4111") {
					t.Fatalf("the PCI finding prints the value: %s", r.Detail)
				}
				return r
			}
		}
		t.Fatal("no result for orders")
		return Result{}
	}
	want := func(step string, r Result, status Status, detail string) {
		t.Helper()
		if r.Status != status || !strings.Contains(r.Detail, detail) {
			t.Fatalf("%s: %s %q, want %s with %q", step, r.Status, r.Detail, status, detail)
		}
	}
	load("fa", "a1", at.Add(2*time.Hour), "placed", "paid")
	load("fb", "b1", at.Add(2*time.Hour), "placed", pan)
	want("a leak", scan(false), Fail, "column status: 1 card numbers in 1 rows")
	want("the leak again (not recorded clean)", scan(false), Fail, "1 card numbers")
	load("fb", "b2", at.Add(3*time.Hour), "placed") // purged: the file replaced without the value
	want("after the purge", scan(false), Pass, "the rows of 2 files loaded since the last clean scan")
	want("nothing new", scan(false), Pass, "no file loaded since the last clean scan")
	load("fc", "c1", at.Add(time.Hour), pan) // committed now, stamped before fa and fb
	want("a late load with an older stamp", scan(false), Fail, "1 card numbers in 1 rows")
	load("fc", "c2", at.Add(4*time.Hour), "placed")
	want("its purge", scan(false), Pass, "the rows of 1 files")
	// a value no load accounts for (written by hand into a scanned file's rows)
	if _, err := wh.DB.Exec("UPDATE raw.orders SET status = ? WHERE order_id = 'fa-0'", pan); err != nil {
		t.Fatal(err)
	}
	want("incremental: the scanned files are not read again", scan(false), Pass, "no file loaded since")
	want("a full scan reads every row", scan(true), Fail, "1 card numbers")
}

// TestWarehouseDuplicateChecksFollowTheLoads: the hourly duplicate checks read the keys
// of the files loaded since they last passed, and judge each key against its whole
// history: a file that repeats a (key, version) another file loaded before is a
// duplicate though it holds one row; a failure is not recorded (it fails until
// repaired); a late commit with an older stamp is checked; a changed ownership history
// checks every key again, finding a duplicate no new file brings.
func TestWarehouseDuplicateChecksFollowTheLoads(t *testing.T) {
	ctx := context.Background()
	text, err := os.ReadFile("../../shards.yaml")
	if err != nil {
		t.Fatal(err)
	}
	parse := func(s string) *registry.Registry {
		t.Helper()
		r, err := registry.Check(strings.NewReader(s))
		if err != nil {
			t.Fatal(err)
		}
		return r
	}
	wh := openDuck(t, parse(string(text)))
	day := func(m, d int) time.Time { return time.Date(2026, time.Month(m), d, 10, 0, 0, 0, time.UTC) }
	type row struct {
		id    string
		shard string
		b     int
		v     int64
		at    time.Time
	}
	load := func(file, sha string, loadedAt time.Time, rows ...row) {
		t.Helper()
		if _, err := wh.DB.Exec("DELETE FROM raw.orders WHERE _file = ?", file); err != nil {
			t.Fatal(err)
		}
		for _, r := range rows {
			if _, err := wh.DB.Exec(`INSERT INTO raw.orders (order_id, customer_id, bucket, status, updated_at, row_version,
				_shard, _source, _op, _commit_ts, _file, _loaded_at) VALUES (?, 1, ?, 'placed', ?, ?, ?, 'batch', 'r', ?, ?, ?)`,
				r.id, r.b, r.at, r.v, r.shard, r.at, file, loadedAt); err != nil {
				t.Fatal(err)
			}
		}
		if _, err := wh.DB.Exec(`INSERT OR REPLACE INTO raw._load_history VALUES (?, 'orders', 's00', 'batch', ?, '0', ?, ?)`, file, len(rows), sha, loadedAt); err != nil {
			t.Fatal(err)
		}
	}
	check := func(step string, full bool, status Status, detail string) {
		t.Helper()
		for _, r := range duplicateChecks(ctx, wh, "orders", full, "r", day(11, 1)) {
			if (r.Status == Fail) == (status == Fail) && strings.Contains(r.Detail, detail) {
				return
			}
		}
		t.Fatalf("%s: %+v, want one %s with %q", step, duplicateChecks(ctx, wh, "orders", full, "r", day(11, 1)), status, detail)
	}
	loaded := day(11, 1)
	load("fa", "a1", loaded, row{"k1", "s00", 5, 1, day(5, 1)}, row{"k2", "s00", 5, 1, day(5, 1)})
	load("fb", "b1", loaded, row{"k3", "s00", 5, 1, day(5, 1)})
	check("the first run", false, Pass, "every key (the ownership history changed since the last pass)")
	check("nothing new", false, Pass, "no file loaded since the last pass")
	// a backfill loads k1 v1 again under another file key, committed now, stamped earlier
	load("fc", "c1", loaded.Add(-time.Hour), row{"k1", "s00", 5, 1, day(5, 1)})
	check("a pair loaded twice, one of the files new", false, Fail, "k1 v1 shard s00")
	check("again (a failure is not recorded)", false, Fail, "k1 v1 shard s00")
	load("fc", "c2", loaded, row{"k4", "s00", 5, 1, day(5, 1)})
	check("the file replaced", false, Pass, "the keys of 1 files loaded since the last pass")
	// the same latest version from two owners (s02 before the move, s00)
	load("fd", "d1", loaded, row{"k5", "s02", 3600, 3, day(5, 1)})
	load("fe", "e1", loaded, row{"k5", "s00", 5, 3, day(5, 1)})
	check("a key owned twice at its latest version", false, Fail, "k5")
	load("fe", "e2", loaded, row{"k6", "s00", 5, 1, day(5, 1)})
	check("repaired", false, Pass, "the keys of 2 files")
	// k7 v1 on s02 after the move's cutover (not owned) and on s03 later (owned): no
	// duplicate, until the move is recorded two months later: then s02 owned it too
	load("ff", "f1", loaded, row{"k7", "s02", 3600, 1, day(7, 1)}, row{"k7", "s03", 3600, 1, day(9, 1)})
	check("a move's rows", false, Pass, "the keys of 1 files")
	check("nothing new", false, Pass, "no file loaded since the last pass")
	wh.Registry = parse(strings.Replace(string(text), "cutover: 2026-06-01T00:00:00Z", "cutover: 2026-08-01T00:00:00Z", 1))
	check("the move re-recorded", false, Fail, "k7")
	wh.Registry = parse(string(text))
	check("back to the history that last passed (the failure recorded nothing)", false, Pass, "no file loaded since the last pass")
	wh.Registry = parse(strings.Replace(string(text), "cutover: 2026-06-01T00:00:00Z", "cutover: 2026-06-02T00:00:00Z", 1))
	check("another history", false, Pass, "every key (the ownership history changed")
	wh.Registry = parse(string(text))
	check("back to the first: every key again", false, Pass, "every key (the ownership history changed")
	// a duplicate no file accounts for (written by hand): only a full scan reads it
	if _, err := wh.DB.Exec("UPDATE raw.orders SET order_id = 'k1' WHERE order_id = 'k2'"); err != nil {
		t.Fatal(err)
	}
	check("incremental", false, Pass, "no file loaded since the last pass")
	check("a full scan", true, Fail, "k1 v1 shard s00")
}

//go:build cdce2e

package cdc_test

import (
	"context"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/shopsphere/shardflow/internal/connector"
	"github.com/shopsphere/shardflow/internal/landing"
	"github.com/shopsphere/shardflow/internal/reconcile"
	"github.com/shopsphere/shardflow/internal/warehouse/duckdb"
	"github.com/shopsphere/shardflow/internal/workload"
	"github.com/shopsphere/shardflow/internal/workload/workloadtest"
	"github.com/shopsphere/shardflow/pkg/routing"
)

// The column the schema phase rolls out, and where shards.yaml declares it.
const (
	newColumn     = "gift_note"
	declaredAfter = "      - {name: note, type: text, pci: redact}\n"
	declaration   = "      - {name: gift_note, type: text, adding: true}\n"
)

// schemaChange is TestE2E's third phase, on the same fleet and CDC stack: a column
// rolled out under traffic with both paths running (docs/runbooks/schema-change.md).
// orders.gift_note is declared with adding: true (the connectors' include list gains
// it, tokenize cdc restarts with it), then added to the shards one at a time with
// pauses between, each shard's application writing it from its ALTER on (a trigger:
// 'gift <row_version>'), then adding: true is removed. The batch path extracts every
// closed window throughout. Then:
//
//   - no extract-window was refused (exit other than 0 and 75) at any point;
//   - every bucket of every table and of fact_orders reconciles with the shards (count
//     and checksum of the latest owned versions) with the batch files alone (but
//     order_items, whose earlier hard deletes batch cannot see), the CDC files alone and
//     both; dq (completeness per shard and window, the schema check of
//     every shard and table) passes;
//   - every row version written after its shard's ALTER reached the raw table with its
//     gift_note through both paths, and every row landed NULL-and-absent was written
//     before its shard's ALTER;
//   - fact_orders, rebuilt by a dbt project that declares the column, carries every live
//     order's gift_note.
func schemaChange(t *testing.T, r *rig, ctx context.Context) {
	size := r.reg.Extract.Window.Duration
	phase := time.Now().UTC().Truncate(size)

	// Pull request: declare the column, rolling out.
	before, err := os.ReadFile(r.regFile)
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(string(before), declaredAfter) {
		t.Fatalf("the test's shards.yaml has no line %q to declare %s after", declaredAfter, newColumn)
	}
	base := filepath.Join(r.dir, "shards-before-"+newColumn+".yaml")
	if err := os.WriteFile(base, before, 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(r.regFile, []byte(strings.Replace(string(before), declaredAfter, declaredAfter+declaration, 1)), 0o644); err != nil {
		t.Fatal(err)
	}
	plan, _ := r.runBin(ctx, nil, "shardctl", "plan", "--base", base)
	for _, want := range []string{"column gift_note text added (pci: keep), rolling out (adding: true)", "load adds it to raw.orders", "column.include.list gains it", "lands NULL for it, named in _absent_columns"} {
		if !strings.Contains(plan, want) {
			t.Errorf("shardctl plan does not say %q:\n%s", want, plan)
		}
	}
	r.reload()
	for _, ch := range r.apply(ctx) {
		if ch.Action != connector.Update {
			t.Errorf("connectors after declaring %s: %s %s, want update (the include list)", newColumn, ch.Name, ch.Action)
		}
	}
	follow := r.startConsumer("--flush-interval", "2s", "--file-records", "2000")

	tctx, stopTraffic := context.WithCancel(ctx)
	traffic := workloadtest.Start(tctx, t, workload.Config{Registry: r.reg, DSNs: r.dsns(), Router: routing.New(r.reg), Seed: 31, Duration: 10 * time.Minute, Rate: 60, Writers: 2, Customers: 3000})
	batch := r.newBatchPath(ctx, phase)
	var refusals []string
	batch.refused = func(shard, table string, w time.Time, code int, out string) {
		refusals = append(refusals, fmt.Sprintf("%s %s %s: exit %d: %s", shard, table, w.Format(time.RFC3339), code, tailLines(out, 3)))
	}
	batchDone := batch.every(tctx, 10*time.Second)

	// The ALTER, shard by shard; from it on the shard's application writes the column.
	alterAt := map[string]time.Time{}
	for _, s := range r.fleet.Shards {
		time.Sleep(12 * time.Second)
		conn, err := pgx.Connect(ctx, s.AdminDSN)
		if err != nil {
			t.Fatal(err)
		}
		// orders_stamp_gift_note fires after orders_stamp (triggers fire by name), so it
		// sees the new row_version
		_, err = conn.Exec(ctx, `BEGIN;
ALTER TABLE orders ADD COLUMN gift_note text;
CREATE FUNCTION shardflow_e2e_gift_note() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN NEW.gift_note := 'gift ' || NEW.row_version; RETURN NEW; END $$;
CREATE TRIGGER orders_stamp_gift_note BEFORE INSERT OR UPDATE ON orders FOR EACH ROW EXECUTE FUNCTION shardflow_e2e_gift_note();
COMMIT`)
		if err == nil {
			var at time.Time
			err = conn.QueryRow(ctx, "SELECT clock_timestamp()").Scan(&at)
			alterAt[s.ID] = at
		}
		conn.Close(ctx)
		if err != nil {
			t.Fatalf("ALTER on %s: %v", s.ID, err)
		}
		t.Logf("schema change: %s has orders.%s (%s)", s.ID, newColumn, alterAt[s.ID].Format(time.RFC3339Nano))
	}
	time.Sleep(15 * time.Second)

	// Pull request: every shard has it, the rollout is done.
	text, err := os.ReadFile(r.regFile)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(r.regFile, []byte(strings.Replace(string(text), declaration, strings.Replace(declaration, ", adding: true", "", 1), 1)), 0o644); err != nil {
		t.Fatal(err)
	}
	r.reload()
	if err := follow.stop(); err != nil {
		t.Fatalf("tokenize cdc (follow) exited with %v", err)
	}
	follow = r.startConsumer("--flush-interval", "2s", "--file-records", "2000")
	time.Sleep(20 * time.Second)
	stopTraffic()
	st := traffic.Wait()
	if err := <-batchDone; err != nil {
		t.Fatalf("batch path: %v", err)
	}

	r.drain(ctx, batch, follow)
	if len(refusals) > 0 {
		t.Errorf("windows refused during the rollout:\n%s", strings.Join(refusals, "\n"))
	}
	t.Logf("schema change traffic: ops %v; %d windows extracted, none refused", st.Ops, len(batch.done))

	// Every bucket, every table, three ways; the column's values through both paths.
	whBatch, whCDC := filepath.Join(r.dir, "schema-batch.duckdb"), filepath.Join(r.dir, "schema-cdc.duckdb")
	loadOrFail(t, r.loadInto(ctx, whBatch, landing.Batch))
	loadOrFail(t, r.loadInto(ctx, whCDC, landing.CDC))
	shardSums, err := reconcile.Shards(ctx, r.reg, func(id string) string {
		s, _ := r.fleet.Shard(id)
		return s.AdminDSN
	})
	if err != nil {
		t.Fatal(err)
	}
	written := r.giftNotes(ctx, "gift_note IS NOT NULL")
	if len(written) == 0 {
		t.Fatal("no row was written after an ALTER: the checks below would prove nothing")
	}
	for _, wh := range []struct {
		name, path string
		src        landing.Source
	}{{"batch only", whBatch, landing.Batch}, {"CDC only", whCDC, landing.CDC}, {"batch and CDC", r.whPath, ""}} {
		// the hourly build, by the project as committed (it does not select the column yet)
		t.Logf("dbt (%s): %s", wh.name, r.dbtBuildAt(ctx, wh.path, "--exclude", "path:models/marts/finance"))
		w, err := duckdb.Open(ctx, wh.path)
		if err != nil {
			t.Fatal(err)
		}
		ware, err := reconcile.Warehouse(ctx, w.DB(), r.reg, func(s string) string { return s })
		if err == nil {
			n := 0
			for _, d := range reconcile.Compare(shardSums, ware) {
				// the batch path cannot see the earlier phases' hard deletes of order_items
				// (the reshard phase explains each); this phase deletes none, and its
				// column is on orders
				if wh.src == landing.Batch && d.Table == "order_items" {
					continue
				}
				if n++; n <= 10 {
					t.Errorf("%s: %s bucket %d: shards %s, warehouse %s", wh.name, d.Table, d.Bucket, d.Shards, d.Ware)
				}
			}
			err = r.checkGiftNotes(ctx, w, wh.src, written, alterAt)
		}
		w.Close()
		if err != nil {
			t.Errorf("%s: %v", wh.name, err)
		}
	}
	t.Logf("schema change: %d row versions written after their shard's ALTER, each in raw.orders with its %s through batch and through CDC; every bucket of every table and fact_orders reconciled three ways", len(written), newColumn)

	out, code := r.runBin(ctx, nil, "dq", "--from", phase.Format("2006-01-02T15:04Z"), "--to", time.Now().UTC().Truncate(size).Format("2006-01-02T15:04Z"))
	schemaPass := 0
	for _, l := range strings.Split(out, "\n") {
		if f := strings.Fields(l); len(f) > 1 && f[0] == "PASS" && f[1] == "schema" {
			schemaPass++
		}
	}
	if code != 0 || !strings.Contains(out, "completeness") || schemaPass != len(r.fleet.Shards)*len(r.reg.Tables) {
		t.Fatalf("dq over the rollout: exit %d, %d schema results (want %d passing)\n%s", code, schemaPass, len(r.fleet.Shards)*len(r.reg.Tables), out)
	}

	// A mart that declares the column: the dbt project's pull request, rebuilt from the raw history.
	project := r.dbtProjectWith(newColumn)
	t.Logf("dbt (%s declared): %s", newColumn, r.dbtBuildIn(ctx, project, r.whPath, "--full-refresh", "--select", "stg_shard__orders+", "--exclude", "path:models/marts/finance"))
	live := r.giftNotes(ctx, "NOT deleted")
	db, closeDB := r.warehouseDB(ctx)
	defer closeDB()
	rows, err := db.QueryContext(ctx, `SELECT order_id, coalesce(gift_note, '') FROM analytics.fact_orders`)
	if err != nil {
		t.Fatal(err)
	}
	fact := map[string]string{}
	for rows.Next() {
		var id, note string
		if err := rows.Scan(&id, &note); err != nil {
			t.Fatal(err)
		}
		fact[id] = note
	}
	rows.Close()
	bad, carried := 0, 0
	for k, note := range live {
		id := k[:strings.Index(k, "|")]
		if got, ok := fact[id]; !ok || got != note {
			if bad++; bad <= 10 {
				t.Errorf("fact_orders %s: gift_note %q (present %v), the shard has %q", id, got, ok, note)
			}
		}
		if note != "" {
			carried++
		}
	}
	if len(fact) != len(live) {
		t.Errorf("fact_orders has %d orders, the shards %d live ones", len(fact), len(live))
	}
	t.Logf("fact_orders (%s declared): %d orders, %d with the shard's gift_note, the rest NULL as on the shards", newColumn, len(fact), carried)
}

// giftNotes is, over every shard, "order_id|row_version" → gift_note ("" for NULL) of
// the orders matching where.
func (r *rig) giftNotes(ctx context.Context, where string) map[string]string {
	r.t.Helper()
	out := map[string]string{}
	for _, s := range r.fleet.Shards {
		conn, err := pgx.Connect(ctx, s.AdminDSN)
		if err != nil {
			r.t.Fatal(err)
		}
		rows, err := conn.Query(ctx, "SELECT order_id::text || '|' || row_version, coalesce(gift_note, '') FROM orders WHERE "+where)
		if err != nil {
			r.t.Fatal(err)
		}
		for rows.Next() {
			var k, v string
			if err := rows.Scan(&k, &v); err != nil {
				r.t.Fatal(err)
			}
			out[k] = v
		}
		rows.Close()
		conn.Close(ctx)
	}
	return out
}

// checkGiftNotes: every row version in written (the shards' rows written after their
// ALTER) is in raw.orders with its gift_note, from src ("" for both, each); every raw
// row landed with gift_note absent changed before its shard's ALTER; no raw row has a
// gift_note the shard did not write.
func (r *rig) checkGiftNotes(ctx context.Context, w *duckdb.Warehouse, src landing.Source, written map[string]string, alterAt map[string]time.Time) error {
	rows, err := w.DB().QueryContext(ctx, `SELECT order_id || '|' || row_version, _source, _shard, _commit_ts, coalesce(gift_note, ''), coalesce(_absent_columns, '') FROM raw.orders
		WHERE gift_note IS NOT NULL OR _absent_columns IS NOT NULL`)
	if err != nil {
		return err
	}
	defer rows.Close()
	seen := map[string]map[string]bool{} // key → sources
	for rows.Next() {
		var k, source, shard, note, absent string
		var at time.Time
		if err := rows.Scan(&k, &source, &shard, &at, &note, &absent); err != nil {
			return err
		}
		if absent != "" {
			if absent != newColumn || !at.Before(alterAt[shard]) {
				return fmt.Errorf("%s (%s, %s) landed with _absent_columns %q, changed at %s, its shard's ALTER at %s", k, source, shard, absent, at.Format(time.RFC3339Nano), alterAt[shard].Format(time.RFC3339Nano))
			}
			continue
		}
		if want, ok := written[k]; ok && want != note {
			return fmt.Errorf("%s (%s, %s): gift_note %q, the shard wrote %q", k, source, shard, note, want)
		}
		if note != "" && !strings.HasPrefix(note, "gift ") {
			return fmt.Errorf("%s (%s, %s): gift_note %q was never written", k, source, shard, note)
		}
		if seen[k] == nil {
			seen[k] = map[string]bool{}
		}
		seen[k][source] = true
	}
	if err := rows.Err(); err != nil {
		return err
	}
	for k := range written {
		for _, s := range []landing.Source{landing.Batch, landing.CDC} {
			if (src == "" || src == s) && !seen[k][string(s)] {
				return fmt.Errorf("%s, written after its shard's ALTER, reached raw.orders without its gift_note through %s", k, s)
			}
		}
	}
	return nil
}

// dbtProjectWith copies the dbt project inside the repository (SHARDFLOW_DBT_SEEDS must
// stay in it) and makes the pull request that carries column: the staging model selects
// it, fact_orders and its contract carry it.
func (r *rig) dbtProjectWith(column string) string {
	r.t.Helper()
	dst, err := os.MkdirTemp(filepath.Join(r.root, "var", "cdc"), "e2e-dbt-")
	if err != nil {
		r.t.Fatal(err)
	}
	r.t.Cleanup(func() { os.RemoveAll(dst) })
	srcDir := filepath.Join(r.root, "dbt")
	err = filepath.WalkDir(srcDir, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		rel, _ := filepath.Rel(srcDir, p)
		if d.IsDir() {
			if rel == "target" || rel == "logs" || rel == "dbt_packages" {
				return filepath.SkipDir
			}
			return os.MkdirAll(filepath.Join(dst, rel), 0o755)
		}
		b, err := os.ReadFile(p)
		if err != nil {
			return err
		}
		return os.WriteFile(filepath.Join(dst, rel), b, 0o644)
	})
	if err != nil {
		r.t.Fatal(err)
	}
	edit := func(rel, old, new string) {
		p := filepath.Join(dst, rel)
		b, err := os.ReadFile(p)
		if err != nil {
			r.t.Fatal(err)
		}
		if !strings.Contains(string(b), old) {
			r.t.Fatalf("%s has no %q to carry %s after", rel, old, column)
		}
		if err := os.WriteFile(p, []byte(strings.Replace(string(b), old, old+new, 1)), 0o644); err != nil {
			r.t.Fatal(err)
		}
	}
	edit("models/staging/stg_shard__orders.sql", "    cast(region as varchar) as region,\n", fmt.Sprintf("    cast(%s as varchar) as %s,\n", column, column))
	edit("models/marts/core/fact_orders.sql", "    o.region,\n", fmt.Sprintf("    o.%s,\n", column))
	edit("models/marts/core/_core.yml", "        description: Customer region.\n", fmt.Sprintf("      - name: %s\n        data_type: varchar\n        description: The new column (NULL where the shard did not have it yet).\n", column))
	return dst
}

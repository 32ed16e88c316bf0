package main

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/shopsphere/shardflow/internal/dq"
	"github.com/shopsphere/shardflow/internal/extract/extracttest"
	"github.com/shopsphere/shardflow/internal/load/loadtest"
	"github.com/shopsphere/shardflow/internal/warehouse/duckdb"
	"github.com/shopsphere/shardflow/internal/window"
)

// TestKillAndRerun: invariant 3. extract-window is SIGKILLed after some pages, and
// between its data file and its manifest, on two shards and two windows, then re-run;
// loads run between the crashes, and loads of re-extracted files crash inside their
// transaction at every step (the DuckDB backend's failpoints) and around it
// (internal/load's failpoints) before one completes. The warehouse ends with exactly the shards' owned rows
// of each window (count and checksum), with no duplicates.
func TestKillAndRerun(t *testing.T) {
	ctx := context.Background()
	e := newEnv(t, "100")
	hour := e.reg.Extract.Window.Duration
	windows := []window.Window{windowAt("2026-03-10T10:00Z", hour), windowAt("2026-03-10T11:00Z", hour)}
	shards := []string{"s00", "s01"}
	for _, sh := range shards {
		// owned rows, plus a few rows of another shard's customers (excluded by ownership)
		custs := extracttest.CustomersOwnedBy(e.reg, sh, windows[0].Start, 30, 1)
		other := "s02"
		custs = append(custs, extracttest.CustomersOwnedBy(e.reg, other, windows[0].Start, 1, 1)...)
		for i, w := range windows {
			if err := extracttest.Fill(ctx, e.admin(sh), e.reg, extracttest.Spec{Table: "orders", Rows: 1500 + 300*i, From: w.Start, To: w.End,
				Customers: custs, Seed: sh + w.String()}); err != nil {
				t.Fatal(err)
			}
		}
	}
	db := e.warehouse()
	args := func(sh string, w window.Window) []string {
		return []string{"--shard", sh, "--table", "orders", "--window", w.Start.Format(time.RFC3339)}
	}

	for _, sh := range shards {
		for _, w := range windows {
			// 1. killed after 3 pages: nothing landed
			e.extractKilled("after-page:3", args(sh, w)...)
			if data, man := e.landed("orders", sh, w); data || man {
				t.Fatalf("%s %s killed after 3 pages: data %v manifest %v, want neither", sh, w, data, man)
			}
			// 2. killed between data and manifest: data, no manifest; load ignores it
			e.extractKilled("before-manifest", args(sh, w)...)
			if data, man := e.landed("orders", sh, w); !data || man {
				t.Fatalf("%s %s killed before the manifest: data %v manifest %v, want data only", sh, w, data, man)
			}
			if n := loadLanded(t, db, e.reg, e.lake, "orders"); n != 0 && sh == shards[0] && w == windows[0] {
				t.Fatalf("load took %d files without manifests", n)
			}
			// 3. a clean run lands it; load
			if code, out := e.extract(args(sh, w)...); code != 0 {
				t.Fatalf("%s %s: exit %d: %s", sh, w, code, out)
			}
			loadLanded(t, db, e.reg, e.lake, "orders")
			// 4. a re-run killed mid-way un-lands the window; load keeps the loaded rows
			e.extractKilled("after-page:5", args(sh, w)...)
			if _, man := e.landed("orders", sh, w); man {
				t.Fatalf("%s %s: a re-run killed mid-way left the old manifest", sh, w)
			}
			loadLanded(t, db, e.reg, e.lake, "orders")
			// 5. the re-run completes: the same rows give the same bytes (nothing of the
			//    run is in the data), so load skips the file
			if code, out := e.extract(args(sh, w)...); code != 0 {
				t.Fatalf("%s %s: exit %d: %s", sh, w, code, out)
			}
			if n := loadLanded(t, db, e.reg, e.lake, "orders"); n != 0 {
				t.Fatalf("%s %s: an unchanged window re-extracted: %d files loaded, want it skipped", sh, w, n)
			}
			// 6. loads that crash inside their transaction, at each step, while replacing
			//    a re-extracted file whose window changed on the shard (a row deleted);
			//    the next load completes
			for _, step := range []string{duckdb.StepDeleted, duckdb.StepInserted, duckdb.StepVerified, duckdb.StepHistory} {
				e.deleteOneRow(sh, w)
				if code, out := e.extract(args(sh, w)...); code != 0 {
					t.Fatalf("%s %s: exit %d: %s", sh, w, code, out)
				}
				db.Failpoint = func(s string) error {
					if s == step {
						return errors.New("crash at " + s)
					}
					return nil
				}
				if _, err := loadtest.LoadLanded(ctx, db, e.reg, e.lake, "orders"); err == nil || !strings.Contains(err.Error(), "crash at "+step) {
					t.Fatalf("load with a crash at %s: %v", step, err)
				}
				db.Failpoint = nil
			}
			// and loads stopped by internal/load's own failpoints, before and after the
			// warehouse transaction
			for _, step := range []string{"verified", "loaded"} {
				e.deleteOneRow(sh, w)
				if code, out := e.extract(args(sh, w)...); code != 0 {
					t.Fatalf("%s %s: exit %d: %s", sh, w, code, out)
				}
				crash := func(s, key string) error {
					if s == step {
						return errors.New("crash")
					}
					return nil
				}
				if _, err := loadtest.LoadLanded(ctx, db, e.reg, e.lake, "orders", crash); err == nil {
					t.Fatalf("load with a crash at %s succeeded", step)
				}
			}
			loadLanded(t, db, e.reg, e.lake, "orders")
		}
	}

	wh := e.dqWarehouse(db)
	for _, sh := range shards {
		src := &dq.Source{Registry: e.reg, Shard: sh, Conn: e.extractConn(sh)}
		for _, w := range windows {
			r := dq.Completeness(ctx, src, wh, "orders", w)
			if r.Status != dq.Pass || r.Detail != "" || *r.SourceCount != *r.WarehouseCount || r.SourceChecksum != r.WarehouseChecksum {
				t.Errorf("%s %s: %s source %d/%s warehouse %d/%s %s", sh, w, r.Status, *r.SourceCount, r.SourceChecksum, *r.WarehouseCount, r.WarehouseChecksum, r.Detail)
			}
			if *r.SourceCount < 1000 {
				t.Errorf("%s %s: only %d rows: the fixture is wrong", sh, w, *r.SourceCount)
			}
		}
	}
	if n, keys, err := wh.BatchDuplicates(ctx, "orders", nil); err != nil || n != 0 {
		t.Errorf("batch duplicates: %d %v %v", n, keys, err)
	}
	var files, rows int64
	if err := db.DB().QueryRow("SELECT count(DISTINCT _file), count(*) FROM raw.orders").Scan(&files, &rows); err != nil {
		t.Fatal(err)
	}
	if files != 4 {
		t.Errorf("raw.orders holds rows of %d files, want 4 (2 shards × 2 windows)", files)
	}
	var unowned int64
	if err := db.DB().QueryRow("SELECT count(*) FROM raw.orders WHERE (_shard = 's00' AND bucket > 1023) OR (_shard = 's01' AND (bucket < 1024 OR bucket > 2047))").Scan(&unowned); err != nil {
		t.Fatal(err)
	}
	if unowned != 0 {
		t.Errorf("%d rows of buckets their shard does not own were landed", unowned)
	}
}

// deleteOneRow deletes one order of window w on shard sh, so the window's next extract
// lands other rows and its load replaces the file.
func (e *env) deleteOneRow(sh string, w window.Window) {
	e.t.Helper()
	c := e.admin(sh)
	defer c.Close(context.Background())
	tag, err := c.Exec(context.Background(), `DELETE FROM orders WHERE order_id = (SELECT order_id FROM orders WHERE updated_at >= $1 AND updated_at < $2 ORDER BY order_id LIMIT 1)`, w.Start, w.End)
	if err != nil || tag.RowsAffected() != 1 {
		e.t.Fatalf("%s %s: delete a row: %v (%d rows)", sh, w, err, tag.RowsAffected())
	}
}

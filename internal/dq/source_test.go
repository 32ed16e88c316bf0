package dq

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/shopsphere/shardflow/internal/extract/extracttest"
	"github.com/shopsphere/shardflow/internal/fleet/fleettest"
	"github.com/shopsphere/shardflow/internal/window"
)

func connect(t *testing.T, dsn string) *pgx.Conn {
	t.Helper()
	c, err := pgx.Connect(context.Background(), dsn)
	if err != nil {
		t.Fatalf("connect: %v", err)
	}
	t.Cleanup(func() { c.Close(context.Background()) })
	return c
}

// TestUnownedRows: on the committed registry, s02 hands buckets 3584-4095 to s03 at
// 2026-06-01 (one hand-recorded instant). Rows of those buckets on s03 before the
// cutover are copies: PASS when s02 holds each at the same version. The slow
// clock: an order's "paid" v2 written on s03 just after the real switch, stamped 1 s
// before the recorded cutover: the ownership filter drops it and s02 holds only v1, so
// it is FAIL, naming the key. Rows of s01's buckets written to s00 are misrouted (FAIL).
func TestUnownedRows(t *testing.T) {
	ctx := context.Background()
	reg := fleettest.Load(t, "../../shards.yaml")
	f := fleettest.Start(t, reg)
	s00, _ := f.Shard("s00")
	s02, _ := f.Shard("s02")
	s03, _ := f.Shard("s03")
	w := window.Window{Start: time.Date(2026, 5, 31, 23, 0, 0, 0, time.UTC), End: time.Date(2026, 6, 1, 0, 0, 0, 0, time.UTC)}
	cutover := w.End

	// s03: its own rows plus copies of s02's moving buckets, all before the cutover;
	// s02 holds the originals
	var moving []int64
	for c := int64(1); len(moving) < 5; c++ {
		if b := reg.Bucket(c); b >= 3584 {
			moving = append(moving, c)
		}
	}
	own := extracttest.CustomersOwnedBy(reg, "s03", w.Start, 5, 1)
	a2, a3 := connect(t, s02.AdminDSN), connect(t, s03.AdminDSN)
	fill := func(c *pgx.Conn, cs []int64, seed string) {
		t.Helper()
		if err := extracttest.Fill(ctx, c, reg, extracttest.Spec{Table: "orders", Rows: 300, From: w.Start, To: w.End, Customers: cs, Seed: seed}); err != nil {
			t.Fatal(err)
		}
	}
	fill(a3, own, "a")
	fill(a3, moving, "b")
	fill(a2, moving, "b")
	sources := map[string]SourceConn{"s02": {Conn: connect(t, s02.ExtractDSN)}, "s03": {Conn: connect(t, s03.ExtractDSN)}}
	cfg := Config{Registry: reg, Sources: sources}
	src3 := &Source{Registry: reg, Shard: "s03", Conn: sources["s03"].Conn}
	r := unownedRows(ctx, cfg, src3, "orders", w)
	if r.Status != Pass || *r.SourceCount != 300 || !strings.Contains(r.Detail, "300 rows are a move's copies") {
		t.Errorf("s03 copies: %+v (count %d), want PASS explaining 300 copies", r, *r.SourceCount)
	}
	n, _, err := src3.WindowChecksum(ctx, "orders", w)
	if err != nil || n != 300 {
		t.Errorf("s03 owned rows of the window = %d (%v), want 300 (the copies are not owned)", n, err)
	}

	// the slow clock: v2 on s03 stamped 1 s before the cutover (a bypassed trigger
	// stands in for a clock running 1 s slow)
	var key string
	if err := a3.QueryRow(ctx, `SELECT order_id::text FROM orders WHERE bucket >= 3584 ORDER BY updated_at DESC LIMIT 1`).Scan(&key); err != nil {
		t.Fatal(err)
	}
	tx, _ := a3.Begin(ctx)
	_, err = tx.Exec(ctx, `SET LOCAL session_replication_role = replica`)
	if err == nil {
		_, err = tx.Exec(ctx, `UPDATE orders SET status = 'paid', row_version = 2, updated_at = $2 WHERE order_id = $1`, key, cutover.Add(-time.Second))
	}
	if err != nil || tx.Commit(ctx) != nil {
		t.Fatal(err)
	}
	r = unownedRows(ctx, cfg, &Source{Registry: reg, Shard: "s03", Conn: sources["s03"].Conn}, "orders", w)
	if r.Status != Fail || !strings.Contains(r.Detail, "1 rows before a move's target marker that the source does not hold") || !strings.Contains(r.Detail, key+" v2") || !strings.Contains(r.Detail, "s02 holds v1") {
		t.Errorf("s03 after the slow-clock write: %+v, want FAIL naming %s v2", r, key)
	}

	// s00: a write for a customer of s01
	wrong := extracttest.CustomersOwnedBy(reg, "s01", w.Start, 1, 1)
	a0 := connect(t, s00.AdminDSN)
	if err := extracttest.Fill(ctx, a0, reg, extracttest.Spec{Table: "orders", Rows: 7, From: w.Start, To: w.End, Customers: wrong, Seed: "w"}); err != nil {
		t.Fatal(err)
	}
	src0 := &Source{Registry: reg, Shard: "s00", Conn: connect(t, s00.ExtractDSN)}
	r = unownedRows(ctx, cfg, src0, "orders", w)
	if r.Status != Fail || !strings.Contains(r.Detail, "7 rows written to a shard that did not own their bucket") || !strings.Contains(r.Detail, "owner then: s01") {
		t.Errorf("s00 misrouted: %+v, want FAIL naming 7 rows and owner s01", r)
	}

	// full scan: s00 holds rows of a bucket it never owned
	r = unownedNow(ctx, src0, "orders")
	if r.Status != Warn || *r.SourceCount != 7 {
		t.Errorf("unowned_now on s00: %+v, want WARN with 7 rows", r)
	}
}

// TestCurrentVersions looks keys up by primary key, composite keys included, and
// reports a key gone from the shard as absent.
func TestCurrentVersions(t *testing.T) {
	ctx := context.Background()
	reg := fleettest.Load(t, "../../shards.yaml")
	f := fleettest.Start(t, reg)
	s00, _ := f.Shard("s00")
	a := connect(t, s00.AdminDSN)
	w := window.Window{Start: time.Date(2026, 3, 1, 0, 0, 0, 0, time.UTC), End: time.Date(2026, 3, 1, 1, 0, 0, 0, time.UTC)}
	custs := extracttest.CustomersOwnedBy(reg, "s00", w.Start, 3, 1)
	if err := extracttest.Fill(ctx, a, reg, extracttest.Spec{Table: "order_items", Rows: 30, From: w.Start, To: w.End, Customers: custs, Seed: "i"}); err != nil {
		t.Fatal(err)
	}
	src := &Source{Registry: reg, Shard: "s00", Conn: connect(t, s00.ExtractDSN)}
	pairs, err := src.WindowPairs(ctx, "order_items", w)
	if err != nil || len(pairs) != 30 {
		t.Fatalf("pairs = %d, %v; want 30", len(pairs), err)
	}
	// update one row (trigger: new version, new watermark now), delete another
	parts := strings.Split(pairs[0].Key, "|")
	if _, err := a.Exec(ctx, "UPDATE order_items SET quantity = quantity + 1 WHERE order_id = $1 AND line_no = $2", parts[0], parts[1]); err != nil {
		t.Fatal(err)
	}
	gone := strings.Split(pairs[1].Key, "|")
	if _, err := a.Exec(ctx, "DELETE FROM order_items WHERE order_id = $1 AND line_no = $2", gone[0], gone[1]); err != nil {
		t.Fatal(err)
	}
	cur, err := src.CurrentVersions(ctx, "order_items", []string{pairs[0].Key, pairs[1].Key, pairs[2].Key})
	if err != nil {
		t.Fatal(err)
	}
	if c := cur[pairs[0].Key]; c.Version != 2 || !c.Watermark.After(w.End) {
		t.Errorf("updated key: %+v, want version 2 with a later watermark", c)
	}
	if _, ok := cur[pairs[1].Key]; ok {
		t.Errorf("deleted key is still reported")
	}
	if c := cur[pairs[2].Key]; c.Version != 1 {
		t.Errorf("untouched key: %+v, want version 1", c)
	}
}

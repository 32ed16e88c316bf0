package extract

import (
	"context"
	"errors"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/shopsphere/shardflow/internal/exitcode"
	"github.com/shopsphere/shardflow/internal/registry"
	"github.com/shopsphere/shardflow/internal/window"
)

// TestLongTransactionHoldsWindow: invariant 2. A transaction writes a row inside a
// 1-minute window and stays open past the window's end. extract refuses the window
// (exit 75) naming the transaction's pid and start, never its query; once it commits,
// the window lands with its row: nothing is lost.
func TestLongTransactionHoldsWindow(t *testing.T) {
	ctx := context.Background()
	reg := testRegistry(t, time.Minute, 0)
	sh := startShards(t, reg)["s00"]
	cust := customerOf(t, reg, "s00")

	// the long transaction: its row's updated_at is its start time
	long := connect(t, sh.AdminDSN)
	tx, err := long.Begin(ctx)
	if err != nil {
		t.Fatal(err)
	}
	defer func() { _ = tx.Rollback(ctx) }()
	var pid int32
	var started time.Time
	if err := tx.QueryRow(ctx, "SELECT pg_backend_pid(), now()").Scan(&pid, &started); err != nil {
		t.Fatal(err)
	}
	const marker = "query-text-must-not-leak"
	longKey := insertOrder(t, ctx, tx, reg, cust, marker)
	w := window.Window{Start: started.UTC().Truncate(time.Minute), End: started.UTC().Truncate(time.Minute).Add(time.Minute)}

	// a committed row in the same window, written by another session
	other := connect(t, sh.AdminDSN)
	otherKey := insertOrder(t, ctx, other, reg, cust, "committed")

	// let the window end pass on the shard's clock, with the transaction still open
	waitShardPast(t, other, w.End)

	ex, lake := newTestExtractor(t, reg, connect(t, sh.ExtractDSN))
	_, err = ex.Run(ctx, Job{Shard: "s00", Table: "orders", Window: w})
	var nc *NotClosedError
	if !errors.As(err, &nc) || exitcode.Of(err) != exitcode.Retryable {
		t.Fatalf("Run with an open transaction = %v (exit %d), want a NotClosedError with exit 75", err, exitcode.Of(err))
	}
	msg := err.Error()
	if !strings.Contains(msg, "pid "+itoa(pid)) || !strings.Contains(msg, started.UTC().Format("2006-01-02T15:04:05")) {
		t.Errorf("refusal %q does not name pid %d and its xact_start %s", msg, pid, started.UTC())
	}
	if strings.Contains(msg, marker) || strings.Contains(msg, "INSERT") {
		t.Errorf("refusal leaks the blocking query: %q", msg)
	}
	if lake.has(t, w, "s00", "orders") {
		t.Fatal("a refused window landed a manifest")
	}

	if err := tx.Commit(ctx); err != nil {
		t.Fatal(err)
	}
	res, err := ex.Run(ctx, Job{Shard: "s00", Table: "orders", Window: w})
	if err != nil {
		t.Fatalf("Run after commit: %v", err)
	}
	keys := lake.keys(t, res)
	for _, k := range []string{longKey, otherKey} {
		if !keys[k] {
			t.Errorf("row %s written in window %s is missing from the landed file", k, w)
		}
	}
	if res.Manifest.Rows != 2 {
		t.Errorf("manifest rows = %d, want 2", res.Manifest.Rows)
	}
}

// TestRecentWindowRefused: t1 > now − safety_lag is refused with exit 75.
func TestRecentWindowRefused(t *testing.T) {
	ctx := context.Background()
	reg := testRegistry(t, time.Minute, 5*time.Minute)
	sh := startShards(t, reg)["s00"]
	conn := connect(t, sh.ExtractDSN)
	now := time.Now().UTC().Truncate(time.Minute)
	w := window.Window{Start: now.Add(-3 * time.Minute), End: now.Add(-2 * time.Minute)}
	cl, err := CheckClosed(ctx, conn, "s00", "orders", w, 5*time.Minute)
	if err != nil {
		t.Fatal(err)
	}
	if cl.Closed || !cl.Err.TooRecent || !strings.Contains(cl.Err.Error(), "safety lag 5m0s") {
		t.Fatalf("window %s with a 5m lag: %+v", w, cl)
	}
	ex, _ := newTestExtractor(t, reg, conn)
	if _, err := ex.Run(ctx, Job{Shard: "s00", Table: "orders", Window: w}); exitcode.Of(err) != exitcode.Retryable {
		t.Fatalf("Run = %v, want exit 75", err)
	}
	w = window.Window{Start: now.Add(-10 * time.Minute), End: now.Add(-9 * time.Minute)}
	if cl, err := CheckClosed(ctx, conn, "s00", "orders", w, 5*time.Minute); err != nil || !cl.Closed {
		t.Fatalf("window %s: %+v %v, want closed", w, cl, err)
	}
}

func customerOf(t *testing.T, reg *registry.Registry, shard string) int64 {
	t.Helper()
	for c := int64(1); ; c++ {
		if reg.Owns(shard, reg.Bucket(c), time.Now()) {
			return c
		}
	}
}

type execer interface {
	QueryRow(ctx context.Context, sql string, args ...any) pgx.Row
}

// insertOrder inserts an order through the trigger (updated_at = the transaction's start).
func insertOrder(t *testing.T, ctx context.Context, db execer, reg *registry.Registry, cust int64, status string) string {
	t.Helper()
	var id string
	err := db.QueryRow(ctx, `INSERT INTO orders (order_id, customer_id, bucket, status, currency, region, total_cents)
		VALUES (gen_random_uuid(), $1, $2, $3, 'EUR', 'eu', 100) RETURNING order_id::text`, cust, reg.Bucket(cust), status).Scan(&id)
	if err != nil {
		t.Fatal(err)
	}
	return id
}

func waitShardPast(t *testing.T, conn *pgx.Conn, at time.Time) {
	t.Helper()
	for {
		var now time.Time
		if err := conn.QueryRow(context.Background(), "SELECT clock_timestamp()").Scan(&now); err != nil {
			t.Fatal(err)
		}
		if now.After(at) {
			return
		}
		d := at.Sub(now) + 50*time.Millisecond
		t.Logf("waiting %s for the window end %s to pass on the shard", d.Round(time.Millisecond), at.UTC().Format(time.RFC3339))
		time.Sleep(d)
	}
}

func itoa(n int32) string { return strconv.Itoa(int(n)) }

// TestPreparedTransactionHoldsWindow: a prepared (two-phase) transaction holds every
// window back until it is resolved, whatever its prepare time: PostgreSQL does not keep
// its start time.
func TestPreparedTransactionHoldsWindow(t *testing.T) {
	ctx := context.Background()
	reg := testRegistry(t, time.Minute, 0)
	sh := startShards(t, reg)["s00"]
	admin := connect(t, sh.AdminDSN)
	cust := customerOf(t, reg, "s00")
	tx, err := admin.Begin(ctx)
	if err != nil {
		t.Fatal(err)
	}
	insertOrder(t, ctx, tx, reg, cust, "prepared")
	if _, err := tx.Exec(ctx, "PREPARE TRANSACTION 'shardflow-test-2pc'"); err != nil {
		t.Fatal(err)
	}
	_ = tx.Rollback(ctx) // the session is free again; the transaction lives on, prepared
	conn := connect(t, sh.ExtractDSN)
	w := window.Window{Start: time.Date(2026, 3, 10, 10, 0, 0, 0, time.UTC), End: time.Date(2026, 3, 10, 10, 1, 0, 0, time.UTC)}
	cl, err := CheckClosed(ctx, conn, "s00", "orders", w, 0)
	if err != nil {
		t.Fatal(err)
	}
	if cl.Closed || len(cl.Err.Blockers) != 1 || !cl.Err.Blockers[0].Prepared || !strings.Contains(cl.Err.Error(), `prepared transaction gid="shardflow-test-2pc"`) {
		t.Fatalf("with a prepared transaction: %+v", cl)
	}
	if _, err := admin.Exec(ctx, "ROLLBACK PREPARED 'shardflow-test-2pc'"); err != nil {
		t.Fatal(err)
	}
	if cl, err := CheckClosed(ctx, conn, "s00", "orders", w, 0); err != nil || !cl.Closed {
		t.Fatalf("after ROLLBACK PREPARED: %+v %v", cl, err)
	}
}

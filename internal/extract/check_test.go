package extract

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/shopsphere/shardflow/internal/exitcode"
	"github.com/shopsphere/shardflow/internal/window"
)

// TestSchemaDrift: a declared column missing, a type change and an undeclared column
// are each reported with the column, expected and found type.
func TestSchemaDrift(t *testing.T) {
	ctx := context.Background()
	reg := testRegistry(t, time.Hour, 5*time.Minute)
	sh := startShards(t, reg)["s00"]
	admin := connect(t, sh.AdminDSN)
	conn := connect(t, sh.ExtractDSN)
	for _, tb := range reg.Tables {
		if err := CheckSchema(ctx, conn, "s00", tb); err != nil {
			t.Fatalf("fresh shard: %v", err)
		}
	}
	for _, stmt := range []string{
		"ALTER TABLE payments ADD COLUMN card_pin text",
		"ALTER TABLE payments DROP COLUMN card_holder",
		"ALTER TABLE payments ALTER COLUMN amount_cents TYPE numeric",
	} {
		if _, err := admin.Exec(ctx, stmt); err != nil {
			t.Fatal(err)
		}
	}
	tb, _ := reg.Table("payments")
	err := CheckSchema(ctx, conn, "s00", tb)
	var de *DriftError
	if !errors.As(err, &de) || !errors.Is(err, ErrSchemaDrift) {
		t.Fatalf("CheckSchema = %v, want a DriftError", err)
	}
	msg := err.Error()
	for _, want := range []string{"shard s00 table payments", "column card_pin: not declared in shards.yaml (found text)",
		"column card_holder: missing on the shard (expected text)", "column amount_cents: type mismatch (expected bigint, found numeric)"} {
		if !strings.Contains(msg, want) {
			t.Errorf("drift error %q does not say %q", msg, want)
		}
	}
	tb, _ = reg.Table("orders")
	if err := CheckSchema(ctx, conn, "s00", tb); err != nil {
		t.Fatalf("orders did not change: %v", err)
	}
}

// TestWrongBucketFailsLoudly: a row whose bucket column is not registry.Bucket(customer_id)
// stops the extract with exit 3 naming the key (ownership cannot be decided for it), and
// nothing lands.
func TestWrongBucketFailsLoudly(t *testing.T) {
	ctx := context.Background()
	reg := testRegistry(t, time.Hour, 5*time.Minute)
	sh := startShards(t, reg)["s00"]
	admin := connect(t, sh.AdminDSN)
	cust := customerOf(t, reg, "s00")
	wrong := (reg.Bucket(cust) + 1) % 1024 // still a bucket s00 owns
	var id string
	if err := admin.QueryRow(ctx, `INSERT INTO orders (order_id, customer_id, bucket, status, currency, region, total_cents)
		VALUES (gen_random_uuid(), $1, $2, 'placed', 'EUR', 'eu', 1) RETURNING order_id::text`, cust, wrong).Scan(&id); err != nil {
		t.Fatal(err)
	}
	var at time.Time
	if err := admin.QueryRow(ctx, "SELECT updated_at FROM orders WHERE order_id = $1", id).Scan(&at); err != nil {
		t.Fatal(err)
	}
	ex, lake := newTestExtractor(t, reg, connect(t, sh.ExtractDSN))
	lag := time.Duration(-2 * time.Hour) // the window is the current hour: let it count as closed
	ex.SafetyLag = &lag
	w := window.Window{Start: at.UTC().Truncate(time.Hour), End: at.UTC().Truncate(time.Hour).Add(time.Hour)}
	_, err := ex.Run(ctx, Job{Shard: "s00", Table: "orders", Window: w})
	if !errors.Is(err, ErrWrongBucket) || exitcode.Of(err) != exitcode.CheckFail || !strings.Contains(err.Error(), id) {
		t.Fatalf("Run = %v (exit %d), want ErrWrongBucket with exit 3 naming %s", err, exitcode.Of(err), id)
	}
	if lake.has(t, w, "s00", "orders") {
		t.Fatal("a window with a wrong bucket landed")
	}
}

package routing_test

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/shopsphere/shardflow/internal/fleet/fleettest"
	"github.com/shopsphere/shardflow/pkg/routing"
)

func TestBucketVectors(t *testing.T) {
	// the same vectors as internal/registry's: the application computes what the pipeline reads
	for _, c := range []struct {
		customer int64
		want     int
	}{{0, 2501}, {1, 2066}, {42, 3479}, {-1, 2109}} {
		if got := routing.Bucket(c.customer, 4096); got != c.want {
			t.Errorf("Bucket(%d) = %d, want %d", c.customer, got, c.want)
		}
	}
}

// Each fence state, as the shard's own trigger raises it, classified and learned.
func TestFenceErrorsFromTheShard(t *testing.T) {
	reg := fleettest.Load(t, "../../shards.yaml")
	f := fleettest.Start(t, reg)
	s00, _ := f.Shard("s00")
	ctx := context.Background()
	c, err := pgx.Connect(ctx, s00.AdminDSN)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close(ctx)
	r := routing.New(reg)
	insert := func(bucket int) error {
		_, err := c.Exec(ctx, `INSERT INTO orders (order_id, customer_id, bucket, status, currency, region, total_cents)
			VALUES (gen_random_uuid(), 1, $1, 'placed', 'EUR', 'eu-west', 100)`, bucket)
		return err
	}
	fence := func(q string) {
		t.Helper()
		if _, err := c.Exec(ctx, q); err != nil {
			t.Fatal(err)
		}
	}
	if err := insert(5); err != nil || r.Learn(err) != nil {
		t.Fatalf("an unfenced bucket: %v", err)
	}
	fence(`INSERT INTO shardflow_bucket_fence (epoch, role, bucket_lo, bucket_hi, state, peer) VALUES (2, 'from', 0, 9, 'fenced', 's01')`)
	fe := r.Learn(insert(5))
	if fe == nil || fe.Kind != routing.Fenced || fe.Move != 2 || fe.Lo != 0 || fe.Hi != 9 || fe.Peer != "s01" || fe.Retry() == 0 {
		t.Fatalf("fenced: %+v", fe)
	}
	if r.Owner(5) != "s00" {
		t.Error("a fence alone reroutes nothing")
	}
	fence(`UPDATE shardflow_bucket_fence SET state = 'moved', marker_at = clock_timestamp() WHERE epoch = 2`)
	fe = r.Learn(insert(7))
	if fe == nil || fe.Kind != routing.Moved || r.Owner(3) != "s01" || r.Owner(10) != "s00" {
		t.Fatalf("moved: %+v, owner of 3 %s, of 10 %s", fe, r.Owner(3), r.Owner(10))
	}
	// a cleanup delete passes only with the move's epoch set
	if _, err := c.Exec(ctx, `DELETE FROM orders WHERE bucket = 5`); routing.Classify(err) == nil {
		t.Errorf("a delete of a moved bucket passed: %v", err)
	}
	tx, _ := c.Begin(ctx)
	if _, err := tx.Exec(ctx, `SET LOCAL shardflow.cleanup_epoch = '2'`); err != nil {
		t.Fatal(err)
	}
	if tag, err := tx.Exec(ctx, `DELETE FROM orders WHERE bucket = 5`); err != nil || tag.RowsAffected() != 1 {
		t.Errorf("cleanup delete: %v %v", tag, err)
	}
	_ = tx.Commit(ctx)
	// the target side: arriving, then owned from its marker
	fence(`INSERT INTO shardflow_bucket_fence (epoch, role, bucket_lo, bucket_hi, state, peer) VALUES (3, 'to', 20, 29, 'incoming', 's02')`)
	if fe := r.Learn(insert(21)); fe == nil || fe.Kind != routing.Arriving || r.Owner(25) != "s02" {
		t.Fatalf("arriving: %+v", fe)
	}
	c2, err := pgx.Connect(ctx, s00.AdminDSN)
	if err != nil {
		t.Fatal(err)
	}
	defer c2.Close(ctx)
	tx, _ = c2.Begin(ctx)
	var started time.Time
	_ = tx.QueryRow(ctx, "SELECT now()").Scan(&started)
	fence(`UPDATE shardflow_bucket_fence SET state = 'owned', marker_at = clock_timestamp() WHERE epoch = 3`)
	_, err = tx.Exec(ctx, `INSERT INTO orders (order_id, customer_id, bucket, status, currency, region, total_cents) VALUES (gen_random_uuid(), 1, 22, 'placed', 'EUR', 'eu-west', 1)`)
	_ = tx.Rollback(ctx)
	if fe := routing.Classify(err); fe == nil || fe.Kind != routing.StartedBefore || !strings.Contains(err.Error(), "retry") {
		t.Fatalf("a transaction begun before the switch: %v", err)
	}
	if err := insert(22); err != nil {
		t.Errorf("after the switch: %v", err)
	}
}

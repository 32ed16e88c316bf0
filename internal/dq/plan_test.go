package dq

import (
	"context"
	"testing"
	"time"

	"github.com/shopsphere/shardflow/internal/extract"
	"github.com/shopsphere/shardflow/internal/extract/extracttest"
	"github.com/shopsphere/shardflow/internal/fleet/fleettest"
)

// TestSourceQueriesUseIndexes: on a 1M-row table, dq's own source queries (key
// look-ups of the drill-down, newest watermark for freshness) read through indexes.
// Its window queries are extract.Queries, checked by extract's TestNoSeqScanOnLargeTable.
func TestSourceQueriesUseIndexes(t *testing.T) {
	if testing.Short() {
		t.Skip("fills 1M rows")
	}
	ctx := context.Background()
	reg := fleettest.Load(t, "../../shards.yaml")
	f := fleettest.Start(t, reg)
	s00, _ := f.Shard("s00")
	admin := connect(t, s00.AdminDSN)
	from := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	if err := extracttest.Fill(ctx, admin, reg, extracttest.Spec{Table: "orders", Rows: 1_000_000, From: from, To: from.Add(90 * 24 * time.Hour),
		Customers: extracttest.CustomersOwnedBy(reg, "s00", from, 200, 1), Seed: "p"}); err != nil {
		t.Fatal(err)
	}
	var keys []string
	rows, err := admin.Query(ctx, "SELECT order_id::text FROM orders ORDER BY order_id LIMIT $1", lookupChunk)
	if err != nil {
		t.Fatal(err)
	}
	for rows.Next() {
		var k string
		_ = rows.Scan(&k)
		keys = append(keys, k)
	}
	rows.Close()
	conn := connect(t, s00.ExtractDSN)
	tb, _ := reg.Table("orders")
	for _, c := range []struct {
		name string
		sql  string
		args []any
	}{
		{"key look-up", lookupSQL(tb), []any{keys}},
		{"newest watermark", maxWatermarkSQL(tb), nil},
	} {
		plan, err := extract.ExplainNodes(ctx, conn, c.sql, c.args...)
		if err != nil {
			t.Fatalf("%s: %v", c.name, err)
		}
		if extract.HasSeqScan(plan, "orders") {
			t.Errorf("%s: sequential scan on orders: %s", c.name, extract.SummarizePlan(plan))
		}
		t.Logf("%s: %s", c.name, extract.SummarizePlan(plan))
	}
}

package extract

import (
	"context"
	"testing"
	"time"

	"github.com/shopsphere/shardflow/internal/extract/extracttest"
	"github.com/shopsphere/shardflow/internal/window"
)

// TestNoSeqScanOnLargeTable: invariant 1. On a table of 1M rows, neither the page query
// nor the ownership-filtered checksum (extract's self-check and dq's source side) nor
// dq's pair and unowned queries read the table with a sequential scan, for the plan
// chosen for these values and for the generic plan a prepared statement may switch to.
func TestNoSeqScanOnLargeTable(t *testing.T) {
	if testing.Short() {
		t.Skip("fills 1M rows")
	}
	ctx := context.Background()
	reg := testRegistry(t, time.Hour, 5*time.Minute)
	sh := startShards(t, reg)["s02"]
	admin := connect(t, sh.AdminDSN)
	from := time.Date(2026, 5, 1, 0, 0, 0, 0, time.UTC)
	// s02 loses buckets 3584-4095 at the 2026-06-01 cutover: its filter has two intervals
	custs := extracttest.CustomersOwnedBy(reg, "s02", from, 400, 1)
	custs = append(custs, extracttest.CustomersOwnedBy(reg, "s00", from, 10, 1)...)
	if err := extracttest.Fill(ctx, admin, reg, extracttest.Spec{Table: "orders", Rows: 1_000_000, From: from, To: from.Add(60 * 24 * time.Hour), Customers: custs, Seed: "big"}); err != nil {
		t.Fatal(err)
	}
	var n int64
	if err := admin.QueryRow(ctx, "SELECT count(*) FROM orders").Scan(&n); err != nil || n < 1_000_000 {
		t.Fatalf("orders has %d rows (%v), want >= 1M", n, err)
	}
	tb, _ := reg.Table("orders")
	q, err := NewQueries(tb, reg.ShardIntervals("s02"), nil)
	if err != nil {
		t.Fatal(err)
	}
	conn := connect(t, sh.ExtractDSN)
	// a 1h window, and a 1-day window (the planner's choice changes with the range size)
	for _, w := range []window.Window{{Start: from.Add(31 * 24 * time.Hour), End: from.Add(31*24*time.Hour + time.Hour)}, {Start: from.Add(10 * 24 * time.Hour), End: from.Add(11 * 24 * time.Hour)}} {
		page := append([]any{w.Start, w.End, 10000}, q.FirstAfter(w.Start)...)
		mid := append([]any{w.Start, w.End, 10000}, w.Start.Add(w.End.Sub(w.Start)/2), "80000000-0000-0000-0000-000000000000")
		cases := []struct {
			name  string
			query string
			args  []any
		}{
			{"page (first)", q.Page, page},
			{"page (middle)", q.Page, mid},
			{"checksum", q.Checksum, []any{w.Start, w.End}},
			{"pairs", q.Pairs, []any{w.Start, w.End}},
			{"unowned", q.Unowned, []any{w.Start, w.End, 1000}},
		}
		for _, c := range cases {
			for _, generic := range []bool{false, true} {
				plan, err := explain(ctx, conn, generic, c.query, c.args...)
				if err != nil {
					t.Fatalf("%s: %v", c.name, err)
				}
				if HasSeqScan(plan, "orders") {
					t.Errorf("window %s, %s query (generic plan %v): sequential scan on orders: %s", w, c.name, generic, SummarizePlan(plan))
				}
				usesIndex := false
				plan.Walk(func(p *PlanNode) { usesIndex = usesIndex || p.Index == "orders_watermark_idx" })
				if !usesIndex {
					t.Errorf("window %s, %s query (generic plan %v): does not use orders_watermark_idx: %s", w, c.name, generic, SummarizePlan(plan))
				}
				t.Logf("window %s %s generic=%v: %s", w, c.name, generic, SummarizePlan(plan))
			}
		}
	}
}

// Package extracttest generates source rows fast, for the tests and the benchmark of
// extract and dq: INSERT ... SELECT generate_series with the trigger bypassed
// (session_replication_role = replica, as a bulk copy during a move runs), so rows get
// chosen watermarks spread over a time range. Buckets come from registry.Bucket, computed
// in Go and passed in as an array: SQL never re-implements the hash.
package extracttest

import (
	"context"
	"fmt"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/shopsphere/shardflow/internal/registry"
)

// Spec says what to generate.
type Spec struct {
	Table     string    // orders, order_items or payments
	Rows      int       // how many
	From, To  time.Time // watermarks spread evenly over [From, To)
	Customers []int64   // customers to cycle through; their buckets decide ownership
	Seed      string    // distinguishes key sets of separate calls (keys are md5(seed || i))
	// Cards, for payments: the card numbers to cycle through (Luhn-valid test PANs).
	Cards []string
}

// CustomersOwnedBy returns n customer ids whose bucket shard owns at instant t,
// starting the search at from.
func CustomersOwnedBy(reg *registry.Registry, shard string, t time.Time, n int, from int64) []int64 {
	var out []int64
	for c := from; len(out) < n; c++ {
		if reg.Owns(shard, reg.Bucket(c), t) {
			out = append(out, c)
		}
	}
	return out
}

// Fill inserts the rows in one statement. conn must be allowed to set
// session_replication_role (a superuser, as the fleet's admin DSN is).
func Fill(ctx context.Context, conn *pgx.Conn, reg *registry.Registry, s Spec) error {
	if len(s.Customers) == 0 || s.Rows <= 0 {
		return fmt.Errorf("fill %s: need customers and rows", s.Table)
	}
	buckets := make([]int32, len(s.Customers))
	for i, c := range s.Customers {
		buckets[i] = int32(reg.Bucket(c))
	}
	spanUS := s.To.Sub(s.From).Microseconds()
	var q string
	// i runs 0..rows-1; customer = customers[i % n + 1]; watermark = from + i*span/rows µs
	common := `WITH c AS (SELECT * FROM unnest($1::bigint[], $2::int[]) WITH ORDINALITY AS c(customer_id, bucket, k)),
		g AS (SELECT i, ($3::timestamptz + make_interval(secs => (i::numeric * $4 / $5 / 1000000)::double precision)) AS wm,
		             md5($6 || i::text)::uuid AS id FROM generate_series(0, $5::bigint - 1) AS i)`
	switch s.Table {
	case "orders":
		q = common + `
		INSERT INTO orders (order_id, customer_id, bucket, status, currency, region, total_cents, refunded_cents, deleted, created_at, updated_at, row_version)
		SELECT g.id, c.customer_id, c.bucket, (ARRAY['placed','paid','shipped','delivered'])[1 + g.i % 4], 'EUR', 'eu-west',
		       1000 + g.i % 50000, 0, false, g.wm, g.wm, 1
		FROM g JOIN c ON c.k = 1 + g.i % cardinality($1::bigint[])`
	case "order_items":
		q = common + `
		INSERT INTO order_items (order_id, line_no, customer_id, bucket, sku, quantity, unit_price_cents, deleted, created_at, updated_at, row_version)
		SELECT g.id, 1 + (g.i % 3)::int, c.customer_id, c.bucket, 'SKU-' || (g.i % 997), 1 + (g.i % 5)::int, 500 + g.i % 9000, false, g.wm, g.wm, 1
		FROM g JOIN c ON c.k = 1 + g.i % cardinality($1::bigint[])`
	case "payments":
		cards := s.Cards
		if len(cards) == 0 {
			cards = []string{"4111111111111111"}
		}
		q = common + `
		INSERT INTO payments (payment_id, order_id, customer_id, bucket, kind, status, amount_cents, currency,
		                      card_number, card_holder, card_expiry, card_cvv, card_last4, deleted, created_at, updated_at, row_version)
		SELECT g.id, md5('o' || $6 || g.i::text)::uuid, c.customer_id, c.bucket, 'charge', 'captured', 1000 + g.i % 50000, 'EUR',
		       ($7::text[])[1 + g.i % cardinality($7::text[])], 'Holder ' || (g.i % 1000), '12/29', lpad((g.i % 1000)::text, 3, '0'),
		       right(($7::text[])[1 + g.i % cardinality($7::text[])], 4), false, g.wm, g.wm, 1
		FROM g JOIN c ON c.k = 1 + g.i % cardinality($1::bigint[])`
		return exec(ctx, conn, s, q, s.Customers, buckets, s.From, spanUS, s.Rows, s.Seed, cards)
	default:
		return fmt.Errorf("fill: unknown table %q", s.Table)
	}
	return exec(ctx, conn, s, q, s.Customers, buckets, s.From, spanUS, s.Rows, s.Seed)
}

func exec(ctx context.Context, conn *pgx.Conn, s Spec, q string, args ...any) error {
	tx, err := conn.Begin(ctx)
	if err != nil {
		return fmt.Errorf("fill %s: %w", s.Table, err)
	}
	defer func() { _ = tx.Rollback(context.WithoutCancel(ctx)) }()
	if _, err := tx.Exec(ctx, "SET LOCAL session_replication_role = replica"); err != nil {
		return fmt.Errorf("fill %s: %w", s.Table, err)
	}
	if _, err := tx.Exec(ctx, q, args...); err != nil {
		return fmt.Errorf("fill %s: %w", s.Table, err)
	}
	if err := tx.Commit(ctx); err != nil {
		return fmt.Errorf("fill %s: %w", s.Table, err)
	}
	_, err = conn.Exec(ctx, "ANALYZE "+pgx.Identifier{s.Table}.Sanitize())
	return err
}

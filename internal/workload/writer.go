package workload

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/shopsphere/shardflow/internal/registry"
)

// writer applies operations on one connection to one shard, one transaction each.
type writer struct {
	shard string
	conn  *pgx.Conn
	reg   *registry.Registry
	stats *Stats
	log   *slog.Logger
}

// stmt is one statement of an operation and the table whose rows it counts.
type stmt struct {
	table  string
	insert bool
	sql    string
	args   []any
}

// loop applies every operation from q until q is closed. After ctx ends it drains q
// without writing. It returns the first error other than ctx's.
func (w *writer) loop(ctx context.Context, q <-chan op) error {
	var first error
	for o := range q {
		if ctx.Err() != nil || first != nil {
			continue
		}
		if err := w.apply(ctx, o); err != nil && ctx.Err() == nil {
			first = err
		}
	}
	return first
}

func (w *writer) apply(ctx context.Context, o op) error {
	stmts := statements(o)
	tx, err := w.conn.Begin(ctx)
	if err != nil {
		return w.fail(o, err)
	}
	defer tx.Rollback(context.Background()) //nolint:errcheck // a no-op after Commit
	b := &pgx.Batch{}
	b.Queue("SELECT now()") // the transaction's start: the rows' updated_at
	for _, s := range stmts {
		b.Queue(s.sql, s.args...)
	}
	br := tx.SendBatch(ctx, b)
	var txStart time.Time
	if err := br.QueryRow().Scan(&txStart); err != nil {
		br.Close()
		return w.fail(o, err)
	}
	affected := make([]int64, len(stmts))
	for i := range stmts {
		tag, err := br.Exec()
		if err != nil {
			br.Close()
			return w.fail(o, fmt.Errorf("%s: %w", stmts[i].table, err))
		}
		affected[i] = tag.RowsAffected()
	}
	if err := br.Close(); err != nil {
		return w.fail(o, err)
	}
	if !w.reg.Owns(w.shard, o.bucket, txStart) {
		owner, _ := w.reg.OwnerAt(o.bucket, txStart)
		w.stats.Misrouted++
		w.log.Warn("misrouted transaction rolled back", "shard", w.shard, "owner", owner, "bucket", o.bucket, "op", o.kind.String())
		return nil // the deferred rollback undoes it
	}
	if err := tx.Commit(ctx); err != nil {
		return w.fail(o, err)
	}
	if o.kind != opNewOrder && affected[0] == 0 {
		w.stats.Missed++
	}
	w.stats.Ops[o.kind.String()]++
	for i, s := range stmts {
		w.stats.count(w.shard, s.table, s.insert, affected[i])
	}
	return nil
}

// fail wraps err with the shard and the operation. It never includes card data: the
// statements' arguments are not part of pgx's error text.
func (w *writer) fail(o op, err error) error {
	if errors.Is(err, context.Canceled) {
		return err
	}
	return fmt.Errorf("workload: shard %s: %s order %s: %w", w.shard, o.kind, o.orderID, err)
}

// statements turns an operation into SQL. updated_at, row_version and created_at come
// from the shardflow_stamp() trigger and column defaults.
func statements(o op) []stmt {
	switch o.kind {
	case opNewOrder:
		skus := make([]string, len(o.items))
		qty := make([]int32, len(o.items))
		price := make([]int64, len(o.items))
		for i, it := range o.items {
			skus[i], qty[i], price[i] = it.sku, int32(it.quantity), it.unitCents
		}
		return []stmt{
			{"orders", true, `INSERT INTO orders (order_id, customer_id, bucket, status, currency, region, total_cents)
				VALUES ($1, $2, $3, $4, $5, $6, $7)`,
				[]any{o.orderID, o.customer, o.bucket, o.status, o.currency, o.region, o.total}},
			{"order_items", true, `INSERT INTO order_items (order_id, line_no, customer_id, bucket, sku, quantity, unit_price_cents)
				SELECT $1, g.n, $2, $3, g.sku, g.qty, g.price
				FROM unnest($4::text[], $5::int[], $6::bigint[]) WITH ORDINALITY AS g(sku, qty, price, n)`,
				[]any{o.orderID, o.customer, o.bucket, skus, qty, price}},
			{"payments", true, `INSERT INTO payments (payment_id, order_id, customer_id, bucket, kind, status, amount_cents, currency,
					card_number, card_holder, card_expiry, card_cvv, card_last4)
				VALUES ($1, $2, $3, $4, 'charge', $5, $6, $7, $8, $9, $10, $11, $12)`,
				[]any{o.paymentID, o.orderID, o.customer, o.bucket, o.paymentStatus, o.total, o.currency,
					o.card.Number, o.card.Holder, o.card.Expiry, o.card.CVV, o.card.Last4()}},
		}
	case opAdvance:
		s := []stmt{{"orders", false, `UPDATE orders SET status = $2 WHERE order_id = $1`, []any{o.orderID, o.status}}}
		if o.paymentStatus != "" {
			s = append(s, stmt{"payments", false, `UPDATE payments SET status = $2 WHERE payment_id = $1`, []any{o.paymentID, o.paymentStatus}})
		}
		return s
	case opRefund:
		var status any
		if o.refundStatus != "" {
			status = o.refundStatus
		}
		return []stmt{
			{"orders", false, `UPDATE orders SET refunded_cents = $2, status = coalesce($3, status) WHERE order_id = $1`,
				[]any{o.orderID, o.refundedNow, status}},
			// A refund goes back to the card that paid; no CVV is needed or kept.
			{"payments", true, `INSERT INTO payments (payment_id, order_id, customer_id, bucket, kind, status, amount_cents, currency,
					card_number, card_holder, card_expiry, card_last4)
				VALUES ($1, $2, $3, $4, 'refund', 'refunded', $5, $6, $7, $8, $9, $10)`,
				[]any{o.refundID, o.orderID, o.customer, o.bucket, o.refundCents, o.currency,
					o.card.Number, o.card.Holder, o.card.Expiry, o.card.Last4()}},
		}
	case opDelete:
		return []stmt{
			{"orders", false, `UPDATE orders SET deleted = true WHERE order_id = $1`, []any{o.orderID}},
			{"order_items", false, `UPDATE order_items SET deleted = true WHERE order_id = $1`, []any{o.orderID}},
			{"payments", false, `UPDATE payments SET deleted = true WHERE order_id = $1`, []any{o.orderID}},
		}
	}
	panic(fmt.Sprintf("workload: unknown operation %d", o.kind))
}

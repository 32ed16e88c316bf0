package workload

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/shopsphere/shardflow/pkg/routing"
)

// writer applies operations on one connection to one shard, one transaction each.
type writer struct {
	shard  string
	conn   *pgx.Conn
	router *routing.Router
	stats  *Stats
	log    *slog.Logger
	// reroute hands an operation whose bucket lives elsewhere now back to the
	// generator, which routes it again (it never blocks).
	reroute func(op)
	// done marks an operation finished (applied or given up).
	done func()
	// observe, when set, receives each committed transaction's latency (Config.Observe).
	observe func(op string, took time.Duration)
}

// stmt is one statement of an operation and the table whose rows it counts.
type stmt struct {
	table  string
	insert bool
	sql    string
	args   []any
}

// FenceWait bounds how long a writer retries a bucket its shard has fenced for a move
// (a cutover holds the fence well under a second).
const FenceWait = time.Minute

// loop applies every operation from q until q is closed. After ctx ends it drains q
// without writing. It returns the first error other than ctx's.
func (w *writer) loop(ctx context.Context, q <-chan op) error {
	var first error
	for o := range q {
		if ctx.Err() != nil || first != nil {
			w.done()
			continue
		}
		if err := w.applyFenced(ctx, o); err != nil && ctx.Err() == nil {
			first = err
		}
	}
	return first
}

// applyFenced applies o the way the application does (pkg/routing): a bucket the shard
// has fenced is retried after a pause, a transaction that began before a switch is
// retried at once, and a bucket that moved (or has not arrived) goes back to be routed
// to the shard the fence names.
func (w *writer) applyFenced(ctx context.Context, o op) error {
	deadline := time.Now().Add(FenceWait)
	for {
		if owner := w.router.Owner(o.bucket); owner != w.shard {
			w.stats.Rerouted++
			w.reroute(o)
			return nil
		}
		err := w.apply(ctx, o)
		fe := w.router.Learn(err)
		if fe == nil {
			w.done()
			return err
		}
		switch fe.Kind {
		case routing.Moved, routing.Arriving:
			w.stats.Rerouted++
			w.reroute(o)
			return nil
		}
		w.stats.Fenced++
		if time.Now().After(deadline) {
			w.done()
			return w.fail(o, fmt.Errorf("fenced for more than %s: %w", FenceWait, err))
		}
		select {
		case <-ctx.Done():
			w.done()
			return ctx.Err()
		case <-time.After(fe.Retry()):
		}
	}
}

func (w *writer) apply(ctx context.Context, o op) error {
	stmts := statements(o)
	began := time.Now()
	tx, err := w.conn.Begin(ctx)
	if err != nil {
		return w.fail(o, err)
	}
	defer tx.Rollback(context.Background()) //nolint:errcheck // a no-op after Commit
	b := &pgx.Batch{}
	for _, s := range stmts {
		b.Queue(s.sql, s.args...)
	}
	br := tx.SendBatch(ctx, b)
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
	if err := tx.Commit(ctx); err != nil {
		return w.fail(o, err)
	}
	if w.observe != nil {
		w.observe(o.kind.String(), time.Since(began))
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
			{"orders", true, `INSERT INTO orders (order_id, customer_id, bucket, status, currency, region, total_cents, note)
				VALUES ($1, $2, $3, $4, $5, $6, $7, $8)`,
				[]any{o.orderID, o.customer, o.bucket, o.status, o.currency, o.region, o.total, o.note}},
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

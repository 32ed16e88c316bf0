//go:build airflowe2e

package shardctl

import (
	"context"
	"fmt"
	"math/big"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/shopsphere/shardflow/internal/connector"
	"github.com/shopsphere/shardflow/internal/dagen"
	"github.com/shopsphere/shardflow/internal/extract/extracttest"
	"github.com/shopsphere/shardflow/internal/landing"
)

// phaseCDC: Debezium connectors applied from the registry (`shardctl connectors
// secrets|apply`), then two rounds of traffic on every shard, each followed by `airflow
// dags test` of the CDC micro-batch DAG (tokenize cdc --bounded -> load --all -> dbt
// build): fact_orders then equals the shards' live orders.
func phaseCDC(t *testing.T, r *airflowRig) {
	ctx := context.Background()
	secrets := filepath.Join(r.stack.WorkerDir(), connector.SecretsDir)
	if out, err := r.shardctl(ctx, "connectors", "secrets", "--dir", secrets); err != nil {
		t.Fatalf("connectors secrets: %v\n%s", err, out)
	}
	if out, err := r.shardctl(ctx, "connectors", "apply", "--wait", "3m"); err != nil {
		t.Fatalf("connectors apply: %v\n%s\n%s", err, out, lastLines(r.stack.ConnectLog(), 40))
	}
	cdcDAG := r.dag(dagen.CDC)
	for round := 0; round < 2; round++ {
		cdcTraffic(t, ctx, r, round)
		caughtUp(t, ctx, r)
		tctx, cancel := context.WithTimeout(ctx, 10*time.Minute)
		start := time.Now()
		out, err := r.home.Airflow(tctx, "dags", "test", cdcDAG)
		cancel()
		if err != nil || !strings.Contains(out, "state=success") && !strings.Contains(out, "DagRunState.SUCCESS") {
			t.Fatalf("round %d: airflow dags test %s: %v\n%s", round, cdcDAG, err, lastLines(out, 80))
		}
		t.Logf("round %d: micro-batch run (tokenize cdc --bounded -> load --all -> dbt build) took %s", round, time.Since(start).Round(time.Second))
		src, fact := sourceOrders(t, ctx, r), factOrders(t, r)
		if src != fact {
			t.Fatalf("round %d: fact_orders %+v, shards' live orders %+v", round, fact, src)
		}
		t.Logf("round %d: fact_orders = shards: %d orders, %d total_cents", round, fact.rows, fact.cents)
	}
	// the micro-batch left nothing behind: shardctl status shows the micro-batch runs
	// succeeded and every shard's CDC healthy (connector, slot, consumer lag 0)
	out, err := r.shardctl(ctx, "status", "--airflow-url", r.home.URL(), "--dag", dagen.CDC, "--runs", "1")
	if err != nil {
		t.Errorf("status: %v\n%s", err, out)
	}
	for _, want := range []string{"== airflow", ": success", "== cdc", "s03 "} {
		if !strings.Contains(out, want) {
			t.Errorf("status lacks %q:\n%s", want, out)
		}
	}
	t.Logf("status:\n%s", out)
}

// cdcTraffic writes orders on every shard as the application does (through the stamp
// trigger, one transaction per statement), for customers the shard owns now. Round 0
// inserts 20 orders, updates 6 and soft-deletes 2; round 1 updates 4 others,
// hard-deletes 3 and inserts 10 more.
func cdcTraffic(t *testing.T, ctx context.Context, r *airflowRig, round int) {
	t.Helper()
	now := time.Now()
	for i, sh := range r.f.Shards {
		conn, err := pgx.Connect(ctx, sh.AdminDSN)
		if err != nil {
			t.Fatal(err)
		}
		custs := extracttest.CustomersOwnedBy(r.reg, sh.ID, now, 4, 1_000_000)
		key := func(n int) string { return fmt.Sprintf("cdc-%s-%d", sh.ID, n) }
		exec := func(q string, args ...any) {
			if _, err := conn.Exec(ctx, q, args...); err != nil {
				t.Fatalf("shard %s: %s: %v", sh.ID, q, err)
			}
		}
		insert := func(from, to int) {
			for n := from; n < to; n++ {
				c := custs[n%len(custs)]
				exec(`INSERT INTO orders (order_id, customer_id, bucket, status, currency, region, total_cents)
				      VALUES (md5($1)::uuid, $2, $3, 'placed', 'EUR', 'eu-west', $4)`, key(n), c, r.reg.Bucket(c), 1000+10*n+i)
			}
		}
		update := func(from, to int, status string, plus int) {
			for n := from; n < to; n++ {
				exec(`UPDATE orders SET status = $2, total_cents = total_cents + $3 WHERE order_id = md5($1)::uuid`, key(n), status, plus)
			}
		}
		switch round {
		case 0:
			insert(0, 20)
			update(0, 6, "paid", 7)
			for n := 6; n < 8; n++ {
				exec(`UPDATE orders SET deleted = true, status = 'cancelled' WHERE order_id = md5($1)::uuid`, key(n))
			}
		case 1:
			update(8, 12, "shipped", 3)
			for n := 12; n < 15; n++ {
				exec(`DELETE FROM orders WHERE order_id = md5($1)::uuid`, key(n))
			}
			insert(20, 30)
		}
		conn.Close(ctx)
	}
}

// caughtUp waits until Debezium has every shard's changes so far in Kafka: its slot's
// confirmed_flush_lsn (advanced once the worker committed the source offsets of
// records Kafka acknowledged) reaches the shard's WAL position after the traffic.
func caughtUp(t *testing.T, ctx context.Context, r *airflowRig) {
	t.Helper()
	for _, sh := range r.f.Shards {
		conn, err := pgx.Connect(ctx, sh.AdminDSN)
		if err != nil {
			t.Fatal(err)
		}
		var lsn string
		if err := conn.QueryRow(ctx, "SELECT pg_current_wal_lsn()::text").Scan(&lsn); err != nil {
			t.Fatal(err)
		}
		deadline := time.Now().Add(3 * time.Minute)
		for {
			var ok bool
			err := conn.QueryRow(ctx, "SELECT coalesce(confirmed_flush_lsn >= $1::pg_lsn, false) FROM pg_replication_slots WHERE slot_name = $2", lsn, connector.SlotName(sh.ID)).Scan(&ok)
			if err == nil && ok {
				break
			}
			if time.Now().After(deadline) {
				t.Fatalf("shard %s: slot %s not confirmed past %s in 3m (%v)\n%s", sh.ID, connector.SlotName(sh.ID), lsn, err, lastLines(r.stack.ConnectLog(), 30))
			}
			time.Sleep(time.Second)
		}
		conn.Close(ctx)
	}
}

// orderSums is what fact_orders must equal: live orders, the sum of their total_cents
// and the checksum of (order_id, version).
type orderSums struct {
	rows, cents int64
	checksum    string
}

func sourceOrders(t *testing.T, ctx context.Context, r *airflowRig) orderSums {
	t.Helper()
	cnt, sum := landing.ChecksumSQL(landing.Postgres, []string{"order_id"}, "row_version")
	var out orderSums
	total := new(big.Int)
	for _, sh := range r.f.Shards {
		conn, err := pgx.Connect(ctx, sh.AdminDSN)
		if err != nil {
			t.Fatal(err)
		}
		var n, cents int64
		var h string
		err = conn.QueryRow(ctx, "SELECT "+cnt+", coalesce(sum(total_cents), 0), "+sum+" FROM orders WHERE NOT deleted").Scan(&n, &cents, &h)
		conn.Close(ctx)
		if err != nil {
			t.Fatal(err)
		}
		v, _ := new(big.Int).SetString(h, 10)
		out.rows += n
		out.cents += cents
		total.Add(total, v)
	}
	out.checksum = total.String()
	return out
}

func factOrders(t *testing.T, r *airflowRig) orderSums {
	t.Helper()
	db := openWarehouse(t, r.wh)
	defer db.Close()
	cnt, sum := landing.ChecksumSQL(landing.DuckDB, []string{"order_id"}, "order_version")
	var out orderSums
	if err := db.QueryRow("SELECT "+cnt+", CAST(coalesce(sum(total_cents), 0) AS BIGINT), "+sum+" FROM analytics.fact_orders").Scan(&out.rows, &out.cents, &out.checksum); err != nil {
		t.Fatal(err)
	}
	return out
}

//go:build cdce2e

package cdc_test

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"math"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"
	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/shopsphere/shardflow/internal/capacity"
	"github.com/shopsphere/shardflow/internal/cdc"
	"github.com/shopsphere/shardflow/internal/connector"
	"github.com/shopsphere/shardflow/internal/testenv"
	"github.com/shopsphere/shardflow/internal/workload"
)

// Settings of BenchmarkCDC.
const (
	benchTraffic   = 2 * time.Minute // sustained writes while the micro-batch loop runs
	benchRate      = 100             // new orders per second (plus their updates, refunds, deletes)
	benchEvents    = 200_000         // inserts replayed from WAL for the events/s comparison
	freshnessLimit = 10 * time.Minute
	// benchEventsOnlyEnv, set to 1, skips part 1 (freshness): only the events/s figures
	// are measured (and recorded), for iterating on the connector's and worker's tuning.
	benchEventsOnlyEnv = "BENCH_CDC_EVENTS_ONLY"
)

// BenchmarkCDC measures the near-real-time path on one local shard, with the reference
// measured in the same run (make bench-cdc):
//
//  1. freshness commit → fact_orders: traffic at benchRate for benchTraffic while a
//     micro-batch loop runs back to back with the CDC DAG's steps (tokenize cdc
//     --bounded → load --all → dbt build --exclude path:models/marts/finance); every
//     order version that becomes visible in fact_orders is a sample of (end of the loop
//     iteration that made it visible − its commit time on the shard). Then the loop
//     drains and fact_orders must equal the shard.
//  2. events/s: with the connector paused, benchEvents inserts are committed; then
//     pg_recvlogical (pgoutput, a slot of its own) reads them from WAL, and the
//     connector is resumed with a follow consumer running: Debezium → Kafka and
//     Debezium → Kafka → tokenize cdc (landed and committed) rates.
//
// The events/s figures are recorded in the rates file (capacity.DefaultRatesFile) as
// cdc_events_per_s (landed and committed by one tokenize cdc replica) and
// debezium_events_per_s (Debezium → Kafka), each with pg_recvlogical's rate of the same
// run as its reference. BENCH_CDC_EVENTS_ONLY=1 measures part 2 only.
func BenchmarkCDC(b *testing.B) {
	eventsOnly := os.Getenv(benchEventsOnlyEnv) == "1"
	r := newRig(b, 1)
	ctx, cancel := context.WithTimeout(context.Background(), 15*time.Minute)
	defer cancel()
	r.apply(ctx)
	sh := r.fleet.Shards[0]
	name := connector.Name(sh.ID)
	b.ResetTimer()

	// 1. Freshness under sustained writes.
	var fr freshness
	if !eventsOnly {
		fr = r.benchFreshness(ctx, b)
	}

	// 2. events/s from WAL: pg_recvlogical beside Debezium → Kafka → tokenize cdc.
	if err := r.connect.Pause(ctx, name); err != nil {
		b.Fatal(err)
	}
	r.waitState(ctx, name, "PAUSED")
	admin, err := pgx.Connect(ctx, sh.AdminDSN)
	if err != nil {
		b.Fatal(err)
	}
	defer admin.Close(context.Background())
	if _, err := admin.Exec(ctx, `SELECT pg_create_logical_replication_slot('bench_recvlogical', 'pgoutput')`); err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() {
		_, _ = admin.Exec(context.Background(), `SELECT pg_drop_replication_slot('bench_recvlogical')`)
	})
	topic := connector.Topic("shardflow", sh.ID, "orders")
	base := r.endOffset(ctx, topic)
	r.insertOrders(ctx, admin, benchEvents)
	var endLSN string
	if err := admin.QueryRow(ctx, `SELECT pg_current_wal_lsn()::text`).Scan(&endLSN); err != nil {
		b.Fatal(err)
	}
	recvBegan := time.Now()
	out, err := exec.CommandContext(ctx, "pg_recvlogical", "-d", sh.ReplicationDSN, "--slot", "bench_recvlogical", "--start",
		"--endpos", endLSN, "--no-loop", "-o", "proto_version=1", "-o", "publication_names="+connector.Publication, "-f", os.DevNull).CombinedOutput()
	recv := time.Since(recvBegan)
	if err != nil {
		b.Fatalf("pg_recvlogical: %v\n%s", err, out)
	}

	pctx, stopFollow := context.WithCancel(ctx)
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		if err := cdc.Command(pctx, []string{"--group", "bench-fresh", "--flush-interval", "1s", "--brokers", strings.Join(r.stack.Brokers, ",")},
			r.childEnv(), io.Discard, io.Discard, testDeps); err != nil {
			b.Errorf("tokenize cdc (follow): %v", err)
		}
	}()
	landedBase := r.landedRows(sh.ID, "orders")
	resumed := time.Now()
	if err := r.connect.Resume(ctx, name); err != nil {
		b.Fatal(err)
	}
	var tenth, kafkaAt, landedAt time.Time
	for landedAt.IsZero() {
		if ctx.Err() != nil {
			b.Fatalf("events not through before the deadline")
		}
		now := time.Now()
		got := r.endOffset(ctx, topic) - base
		if tenth.IsZero() && got >= benchEvents/10 {
			tenth = now
		}
		if kafkaAt.IsZero() && got >= benchEvents {
			kafkaAt = now
		}
		if r.landedRows(sh.ID, "orders")-landedBase >= benchEvents {
			landedAt = now
		}
		time.Sleep(100 * time.Millisecond)
	}
	stopFollow()
	wg.Wait()
	b.StopTimer()

	rate := func(n int, d time.Duration) float64 { return float64(n) / d.Seconds() }
	recvRate := rate(benchEvents, recv)
	kafkaRate := rate(benchEvents-benchEvents/10, kafkaAt.Sub(tenth))
	pathRate := rate(benchEvents, landedAt.Sub(resumed))
	var w bytes.Buffer
	fmt.Fprintf(&w, "\nCDC on this machine: 1 shard, Debezium → Kafka → tokenize cdc → load → dbt (DuckDB)\n\n")
	if eventsOnly {
		fmt.Fprintf(&w, "freshness: not measured (%s=1)\n\n", benchEventsOnlyEnv)
	} else {
		fr.print(&w)
	}
	fmt.Fprintf(&w, "change events/s, %d inserts into orders committed while the connector was paused, read from WAL\n", benchEvents)
	fmt.Fprintf(&w, "  %-46s %12.0f events/s  (reference, %s)\n", "pg_recvlogical, pgoutput, its own slot", recvRate, recv.Round(time.Millisecond))
	fmt.Fprintf(&w, "  %-46s %12.0f events/s  (%.2f× the reference; 10%%→100%% of the events)\n", "Debezium → Kafka", kafkaRate, kafkaRate/recvRate)
	fmt.Fprintf(&w, "  %-46s %12.0f events/s  (%.2f× the reference; resume → all landed, %s)\n", "Debezium → Kafka → tokenize cdc (landed)", pathRate,
		pathRate/recvRate, landedAt.Sub(resumed).Round(time.Millisecond))
	// the machine is shared: the load average beside the figures says how much
	load := "unknown"
	if la, err := os.ReadFile("/proc/loadavg"); err == nil {
		load = strings.Join(strings.Fields(string(la))[:3], " ")
	}
	fmt.Fprintf(&w, "  load average at the end: %s\n", load)
	ratesFile := filepath.Join(testenv.Root(b), capacity.DefaultRatesFile)
	if err := capacity.UpdateRates(ratesFile, capacity.Rates{
		"cdc_events_per_s": {Value: math.Round(pathRate), Unit: "events/s", Reference: math.Round(recvRate), Bench: "make bench-cdc",
			Note: fmt.Sprintf("Debezium → Kafka → tokenize cdc, landed and committed by one replica; %d inserts read back from WAL on one shard; reference pg_recvlogical (pgoutput, own slot), same shard, same run; load average %s", benchEvents, load)},
		"debezium_events_per_s": {Value: math.Round(kafkaRate), Unit: "events/s", Reference: math.Round(recvRate), Bench: "make bench-cdc",
			Note: fmt.Sprintf("Debezium → Kafka, one connector task; %d inserts read back from WAL on one shard; reference pg_recvlogical (pgoutput, own slot), same shard, same run; load average %s", benchEvents, load)},
	}); err != nil {
		b.Errorf("rates file: %v", err)
	} else {
		fmt.Fprintf(&w, "  recorded in %s: cdc_events_per_s, debezium_events_per_s\n", capacity.DefaultRatesFile)
	}
	fmt.Print(w.String())
	b.ReportMetric(pathRate, "path-events/s")
	b.ReportMetric(kafkaRate, "debezium-events/s")
	b.ReportMetric(recvRate, "recvlogical-events/s")
	if !eventsOnly {
		b.ReportMetric(fr.pct(50).Seconds(), "fresh-p50-s")
		b.ReportMetric(fr.pct(95).Seconds(), "fresh-p95-s")
		b.ReportMetric(fr.max().Seconds(), "fresh-max-s")
		if fr.max() > freshnessLimit {
			b.Errorf("max freshness %s exceeds the target %s", fr.max(), freshnessLimit)
		}
	}
}

// freshness is part 1 of BenchmarkCDC: commit → fact_orders samples under sustained writes.
type freshness struct {
	samples, loops []time.Duration // sorted
	writes         int64           // row writes of the traffic
	elapsed        time.Duration   // of the traffic
}

// benchFreshness runs part 1 of BenchmarkCDC (see there).
func (r *rig) benchFreshness(ctx context.Context, b *testing.B) freshness {
	var st *workload.Stats
	trafficDone := make(chan struct{})
	go func() {
		defer close(trafficDone)
		var err error
		st, err = workload.Run(ctx, workload.Config{Registry: r.reg, DSNs: r.dsns(), Seed: 7, Duration: benchTraffic, Rate: benchRate, Writers: 2, Customers: 20000})
		if err != nil {
			b.Errorf("workload: %v", err)
		}
	}()
	seen := map[string]int64{} // order_id → version seen in fact_orders
	var samples, loops []time.Duration
	var drained bool
	for i := 0; ; i++ {
		began := time.Now()
		r.runBoundedIn(ctx, "bench-fresh")
		r.load(ctx)
		r.dbtBuild(ctx, "--exclude", "path:models/marts/finance")
		end := time.Now()
		loops = append(loops, end.Sub(began))
		samples = append(samples, r.newVersions(ctx, seen, end)...)
		select {
		case <-trafficDone:
		default:
			continue
		}
		if r.factOrders(ctx) == r.sourceOrders(ctx) {
			drained = true
			break
		}
		if i > 1000 || ctx.Err() != nil {
			break
		}
	}
	if !drained {
		b.Fatalf("fact_orders never equalled the shard after the traffic")
	}
	if st == nil || len(samples) == 0 {
		b.Fatal("no traffic or no samples")
	}
	var writes int64
	for _, tables := range st.Rows {
		for _, tr := range tables {
			writes += tr.Inserted + tr.Updated
		}
	}
	sort.Slice(samples, func(i, j int) bool { return samples[i] < samples[j] })
	sort.Slice(loops, func(i, j int) bool { return loops[i] < loops[j] })
	return freshness{samples: samples, loops: loops, writes: writes, elapsed: st.Elapsed}
}

func pctOf(xs []time.Duration, p int) time.Duration { return xs[min(len(xs)-1, len(xs)*p/100)] }

func (f freshness) pct(p int) time.Duration { return pctOf(f.samples, p) }
func (f freshness) max() time.Duration      { return f.samples[len(f.samples)-1] }

func (f freshness) print(w io.Writer) {
	ms := 100 * time.Millisecond
	fmt.Fprintf(w, "freshness commit → fact_orders, micro-batch loop back to back (tokenize cdc --bounded → load --all → dbt build --exclude path:models/marts/finance)\n")
	fmt.Fprintf(w, "  load: %.0f row writes/s (%d new orders/s target) for %s; %d loop iterations (p50 %s, max %s); %d order versions sampled\n",
		float64(f.writes)/f.elapsed.Seconds(), benchRate, f.elapsed.Round(time.Second), len(f.loops), pctOf(f.loops, 50).Round(ms),
		f.loops[len(f.loops)-1].Round(ms), len(f.samples))
	fmt.Fprintf(w, "  %-28s %10s %10s %10s %12s\n", "", "p50", "p95", "max", "target")
	fmt.Fprintf(w, "  %-28s %10s %10s %10s %12s\n", "commit → fact_orders", f.pct(50).Round(ms), f.pct(95).Round(ms), f.max().Round(ms), "< "+freshnessLimit.String())
	fmt.Fprintf(w, "  after the traffic: fact_orders = the shard's live orders (count, total_cents, key checksum)\n\n")
}

// childEnv is the environment `tokenize cdc` gets in the test's processes.
func (r *rig) childEnv() map[string]string {
	return map[string]string{"SHARDFLOW_REGISTRY": r.regFile, "SHARDFLOW_ENV": "local", "SHARDFLOW_TOKEN_KEY": testKey}
}

// runBoundedIn runs `tokenize cdc --bounded` in this process.
func (r *rig) runBoundedIn(ctx context.Context, group string) {
	r.t.Helper()
	var out bytes.Buffer
	err := cdc.Command(ctx, []string{"--bounded", "--group", group, "--brokers", strings.Join(r.stack.Brokers, ",")}, r.childEnv(), &out, io.Discard, testDeps)
	if err != nil {
		r.t.Fatalf("tokenize cdc --bounded: %v\n%s", err, out.String())
	}
}

// newVersions returns, for every order version visible in fact_orders and not in seen,
// at − its commit time on the shard, and records it in seen.
func (r *rig) newVersions(ctx context.Context, seen map[string]int64, at time.Time) []time.Duration {
	r.t.Helper()
	db, closeDB := r.warehouseDB(ctx)
	defer closeDB()
	rows, err := db.QueryContext(ctx, `SELECT f.order_id, f.order_version, min(o._commit_ts)
FROM analytics.fact_orders f JOIN raw.orders o ON o.order_id = f.order_id AND o.row_version = f.order_version
GROUP BY f.order_id, f.order_version`)
	if err != nil {
		r.t.Fatal(err)
	}
	defer rows.Close()
	var out []time.Duration
	for rows.Next() {
		var id string
		var v int64
		var ts time.Time
		if err := rows.Scan(&id, &v, &ts); err != nil {
			r.t.Fatal(err)
		}
		if seen[id] == v {
			continue
		}
		seen[id] = v
		out = append(out, at.Sub(ts))
	}
	if err := rows.Err(); err != nil {
		r.t.Fatal(err)
	}
	return out
}

func (r *rig) waitState(ctx context.Context, name, state string) {
	r.t.Helper()
	for deadline := time.Now().Add(time.Minute); ; {
		st, err := r.connect.Status(ctx, name)
		if err == nil && st.Connector.State == state && len(st.Tasks) > 0 && st.Tasks[0].State.State == state {
			return
		}
		if time.Now().After(deadline) {
			r.t.Fatalf("connector %s: %s %v, want %s", name, st.Summary(), err, state)
		}
		time.Sleep(200 * time.Millisecond)
	}
}

// insertOrders commits n new orders on the shard in transactions of 20000 (COPY), each
// with the bucket registry.Bucket gives its customer.
func (r *rig) insertOrders(ctx context.Context, conn *pgx.Conn, n int) {
	r.t.Helper()
	cols := []string{"order_id", "customer_id", "bucket", "status", "currency", "region", "total_cents", "refunded_cents", "deleted", "created_at"}
	now := time.Now().UTC()
	for done := 0; done < n; {
		batch := min(20000, n-done)
		rows := make([][]any, batch)
		for i := range rows {
			cust := int64(1_000_000 + done + i)
			id, err := uuid.NewV7()
			if err != nil {
				r.t.Fatal(err)
			}
			rows[i] = []any{id.String(), cust, int32(r.reg.Bucket(cust)), "placed", "EUR", "eu-west", int64(1000 + i%5000), int64(0), false, now}
		}
		if _, err := conn.CopyFrom(ctx, pgx.Identifier{"orders"}, cols, pgx.CopyFromRows(rows)); err != nil {
			r.t.Fatal(err)
		}
		done += batch
	}
}

func (r *rig) endOffset(ctx context.Context, topic string) int64 {
	r.t.Helper()
	cl, err := kgo.NewClient(kgo.SeedBrokers(r.stack.Brokers...))
	if err != nil {
		r.t.Fatal(err)
	}
	defer cl.Close()
	ends, err := kadm.NewClient(cl).ListEndOffsets(ctx, topic)
	if err != nil {
		r.t.Fatal(err)
	}
	o, ok := ends.Lookup(topic, 0)
	if !ok || o.Err != nil {
		return 0
	}
	return o.Offset
}

// landedRows sums the rows of the landed CDC manifests of one shard's table.
func (r *rig) landedRows(shard, table string) int64 {
	var n int64
	for _, m := range landedManifests(r.t, r.lake, table) {
		if m.Shard == shard {
			n += m.Rows
		}
	}
	return n
}

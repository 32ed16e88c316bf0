//go:build cdce2e

package cdc_test

import (
	"context"
	"database/sql"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/shopsphere/shardflow/internal/connector"
	"github.com/shopsphere/shardflow/internal/landing"
	"github.com/shopsphere/shardflow/internal/load"
	"github.com/shopsphere/shardflow/internal/warehouse/duckdb"
	"github.com/shopsphere/shardflow/internal/workload"
	"github.com/shopsphere/shardflow/internal/workload/workloadtest"
)

// TestE2E is the near-real-time path on the real stack: traffic (inserts, updates,
// soft and hard deletes) on four shards → Debezium → Kafka → tokenize cdc → landing →
// load → DuckDB → dbt. The consumer runs as replicas of one group (horizontal
// `tokenize cdc`): while traffic runs, two replicas share the partitions; one is killed
// with SIGKILL and a third joins (the killed member's partitions move once its session
// times out), the Connect worker is killed once, then another replica is killed and
// the first comes back under its static id, each time after files had landed. Then a fifth shard's connector is applied to the running stack
// and its rows (snapshot and stream) flow through the same consumer with no change to
// its flags or config. After draining: the latest version of every key in the raw
// tables equals the union of the shards (count and checksum per table); fact_orders,
// built by dbt, equals the shards' live orders (count, sum of total_cents, key
// checksum) with one row per order_id; the landed files of every partition tile its
// offsets (no overlap, no gap); no card number is in any landed file or the warehouse,
// and order notes land redacted. The second phase (reshard) moves buckets live, the third
// (schemaChange) rolls a new column out to the shards under traffic. After them, every
// byte of every Kafka topic is scanned for the shards' card numbers and holder names: none.
func TestE2E(t *testing.T) {
	r := newRig(t, 5)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Minute)
	defer cancel()

	first := []string{"s00", "s01", "s02", "s03"}
	plan := r.apply(ctx, first...)
	for _, ch := range plan {
		if ch.Action != connector.Create {
			t.Fatalf("first plan: %s %s, want create", ch.Name, ch.Action)
		}
	}
	followArgs := []string{"--flush-interval", "2s", "--file-records", "2000"}
	replicaA := r.startReplica("replica-a", followArgs...)
	replicaB := r.startReplica("replica-b", followArgs...)

	// Traffic on every shard until the kills are done; the fifth shard is not captured yet.
	tctx, stopTraffic := context.WithCancel(ctx)
	traffic := workloadtest.Start(tctx, t, workload.Config{Registry: r.reg, DSNs: r.dsns(), Seed: 1, Duration: 10 * time.Minute, Rate: 80, Writers: 1, Customers: 2000})

	hardDeletes := 0
	deleteSome := func() {
		for _, s := range r.fleet.Shards[:4] {
			conn, err := pgx.Connect(ctx, s.AdminDSN)
			if err != nil {
				t.Fatal(err)
			}
			tag, err := conn.Exec(ctx, `DELETE FROM order_items WHERE ctid IN (SELECT ctid FROM order_items ORDER BY updated_at LIMIT 3)`)
			conn.Close(ctx)
			if err != nil {
				t.Fatal(err)
			}
			hardDeletes += int(tag.RowsAffected())
		}
	}
	r.waitLanded(ctx, 8, "replicas a and b")
	deleteSome()
	r.waitLanded(ctx, 4, "replicas a and b, after hard deletes")
	t.Log("kill -9 replica a; replica c joins the group")
	replicaA.kill()
	replicaC := r.startReplica("replica-c", followArgs...)
	r.waitLanded(ctx, 4, "replicas b and c")
	t.Log("kill -9 the Connect worker")
	r.stack.KillConnect(t)
	r.stack.StartConnect(t)
	for _, s := range first {
		r.waitRunning(ctx, connector.Name(s))
	}
	deleteSome()
	r.waitLanded(ctx, 4, "replicas b and c, after the worker restarted")
	t.Log("kill -9 replica b; replica a comes back under its id")
	replicaB.kill()
	replicaA = r.startReplica("replica-a", followArgs...)
	r.waitLanded(ctx, 4, "replicas a and c")
	stopTraffic()
	st1 := traffic.Wait()

	// A shard added to the running stack: only its connector is new.
	plan = r.apply(ctx)
	for _, ch := range plan {
		want := connector.Unchanged
		if ch.Name == connector.Name("s04") {
			want = connector.Create
		}
		if ch.Action != want {
			t.Fatalf("plan after adding s04: %s %s, want %s", ch.Name, ch.Action, want)
		}
	}
	st2, err := workload.Run(ctx, workload.Config{Registry: r.reg, DSNs: r.dsns(), Seed: 2, Duration: 6 * time.Second, Rate: 80, Writers: 1, Customers: 2000})
	if err != nil {
		t.Fatalf("workload: %v", err)
	}
	r.waitShardLanded(ctx, "s04")
	for name, rep := range map[string]*child{"a": replicaA, "c": replicaC} {
		if err := rep.stop(); err != nil {
			t.Fatalf("tokenize cdc (follow, replica %s) exited with %v\n%s", name, err, tailFile(filepath.Join(r.logDir, "consumer.log"), 40))
		}
	}
	t.Logf("traffic: %d transactions while killing, then %d with s04 captured; %d hard deletes", sumOps(st1), sumOps(st2), hardDeletes)

	// Drain: bounded runs and loads until the warehouse equals the shards.
	src := r.sourceSums(ctx)
	var wh map[string]tableSum
	deadline := time.Now().Add(4 * time.Minute)
	var lastLoad []load.Summary
	for {
		out := r.runBounded()
		lastLoad = r.load(ctx)
		wh = r.warehouseSums(ctx)
		if equalSums(src, wh) {
			t.Logf("drained; last bounded run:\n%s", out)
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("warehouse never equalled the shards:\nshards    %v\nwarehouse %v\n%s", src, wh, tailFile(filepath.Join(r.logDir, "consumer.log"), 30))
		}
		time.Sleep(3 * time.Second)
	}
	// the warehouse holds every shard's changes up to a commit time the load reports
	// (commit → warehouse freshness, pushed as shardflow_cdc_loaded_commit_timestamp_seconds)
	for _, s := range lastLoad {
		if s.CommitLast.IsZero() || s.CommitLast.After(time.Now()) || time.Since(s.CommitLast) > time.Hour {
			t.Errorf("load of shard %s: latest loaded commit %s, want the time of its last change", s.Shard, s.CommitLast)
		}
	}
	for _, tb := range r.reg.Tables {
		t.Logf("%-12s shards %6d rows checksum %s = raw latest versions %6d rows checksum %s", tb.Name, src[tb.Name].rows, src[tb.Name].sum, wh[tb.Name].rows, wh[tb.Name].sum)
	}

	// fact_orders, built by dbt from the raw tables, is the union of the shards.
	t.Logf("dbt: %s", r.dbtBuild(ctx))
	wantFact, gotFact := r.sourceOrders(ctx), r.factOrders(ctx)
	if gotFact != wantFact {
		t.Fatalf("fact_orders %+v, want the shards' live orders %+v", gotFact, wantFact)
	}
	t.Logf("fact_orders: %d orders (%d distinct order_id), total_cents %d, checksum %s = the shards' live orders", gotFact.rows, gotFact.distinct, gotFact.totalCents, gotFact.sum)

	// The fifth shard's rows arrived through the same consumer, snapshot and stream.
	db, closeDB := r.warehouseDB(ctx)
	var s04ops string
	if err := db.QueryRowContext(ctx, `SELECT string_agg(DISTINCT _op, '' ORDER BY _op) FROM raw.orders WHERE _shard = 's04'`).Scan(&s04ops); err != nil || !strings.Contains(s04ops, "r") || !strings.Contains(s04ops, "c") {
		t.Errorf("ops of s04 in raw.orders %q %v, want snapshot reads (r) and streamed inserts (c)", s04ops, err)
	}
	var ops string
	if err := db.QueryRowContext(ctx, `SELECT string_agg(DISTINCT _op, '' ORDER BY _op) FROM (SELECT _op FROM raw.orders UNION ALL SELECT _op FROM raw.order_items)`).Scan(&ops); err != nil || ops != "cdru" {
		t.Errorf("ops landed %q %v, want c, d, r and u", ops, err)
	}
	// No card number anywhere.
	pans := r.cardNumbers(ctx)
	if len(pans) == 0 {
		t.Fatal("no card numbers on the shards: the check below would prove nothing")
	}
	rows, err := db.QueryContext(ctx, `SELECT card_number FROM raw.payments WHERE card_number IS NOT NULL`)
	if err != nil {
		t.Fatal(err)
	}
	var tokens int
	for rows.Next() {
		var v string
		if err := rows.Scan(&v); err != nil {
			t.Fatal(err)
		}
		if pans[v] || !strings.HasPrefix(v, "tok_k1_") {
			t.Fatalf("raw.payments.card_number holds a value that is not a token (…%s)", v[max(0, len(v)-4):])
		}
		tokens++
	}
	rows.Close()
	r.checkNotesRedacted(ctx, db, r.clearValues(ctx))
	var leaked int
	if err := db.QueryRowContext(ctx, `SELECT count(*) FROM information_schema.columns WHERE table_schema = 'raw' AND column_name IN ('card_cvv', 'card_expiry')`).Scan(&leaked); err != nil || leaked != 0 {
		t.Errorf("warehouse has %d card_cvv/card_expiry columns (%v)", leaked, err)
	}
	closeDB()
	files := 0
	err = filepath.WalkDir(r.lake, func(p string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		b, err := os.ReadFile(p)
		if err != nil {
			return err
		}
		files++
		for _, m := range panRe.FindAll(b, -1) {
			if pans[string(m)] {
				return fmt.Errorf("landed file %s holds a card number", p)
			}
		}
		if strings.Contains(string(b), "card_cvv") || strings.Contains(string(b), "card_expiry") {
			return fmt.Errorf("landed file %s names a dropped column", p)
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("PCI: %d card numbers on the shards, none in %d landed files; %d tokens in raw.payments", len(pans), files, tokens)

	// Exactly once at the file level: per partition, landed files tile the offsets.
	r.checkTiling()

	// Phase two on the same fleet and stack: live rebalancing under traffic.
	reshard(t, r, ctx)
	r.checkTiling()

	// Phase three: a column rolled out to the shards one at a time, under traffic.
	schemaChange(t, r, ctx)
	r.checkTiling()

	// After the live traffic of both phases: no clear card data in any Kafka topic.
	r.checkTopicScan(ctx)
}

// waitLanded waits until at least n more CDC manifests are in the lake than when it
// was called (the running consumer is landing files: mid-stream).
func (r *rig) waitLanded(ctx context.Context, n int, who string) {
	r.t.Helper()
	base := r.manifestCount("")
	for r.manifestCount("") < base+n {
		if ctx.Err() != nil {
			r.t.Fatalf("%s landed fewer than %d files before the deadline\n%s", who, n, tailFile(filepath.Join(r.logDir, "consumer.log"), 30))
		}
		time.Sleep(200 * time.Millisecond)
	}
}

// waitShardLanded waits until a file of shard has landed.
func (r *rig) waitShardLanded(ctx context.Context, shard string) {
	r.t.Helper()
	for r.manifestCount(shard) == 0 {
		if ctx.Err() != nil {
			r.t.Fatalf("no file of shard %s landed\n%s", shard, tailFile(filepath.Join(r.logDir, "consumer.log"), 30))
		}
		time.Sleep(200 * time.Millisecond)
	}
}

// manifestCount counts the CDC manifests in the lake (of one shard, or all).
func (r *rig) manifestCount(shard string) int {
	n := 0
	_ = filepath.WalkDir(r.lake, func(p string, d fs.DirEntry, err error) error {
		if err == nil && !d.IsDir() && strings.HasSuffix(p, landing.ManifestSuffix) && strings.Contains(p, "/source=cdc/") &&
			(shard == "" || strings.Contains(p, "/shard="+shard+"/")) {
			n++
		}
		return nil
	})
	return n
}

func sumOps(s *workload.Stats) int64 {
	if s == nil {
		return 0
	}
	var n int64
	for _, v := range s.Ops {
		n += v
	}
	return n
}

func equalSums(a, b map[string]tableSum) bool {
	if len(a) != len(b) {
		return false
	}
	for k, v := range a {
		if b[k] != v {
			return false
		}
	}
	return true
}

func (r *rig) warehouseDB(ctx context.Context) (*sql.DB, func()) {
	r.t.Helper()
	wh, err := duckdb.Open(ctx, r.whPath)
	if err != nil {
		r.t.Fatal(err)
	}
	return wh.DB(), func() { wh.Close() }
}

func (r *rig) cardNumbers(ctx context.Context) map[string]bool {
	r.t.Helper()
	out := map[string]bool{}
	for _, s := range r.fleet.Shards {
		conn, err := pgx.Connect(ctx, s.AdminDSN)
		if err != nil {
			r.t.Fatal(err)
		}
		rows, err := conn.Query(ctx, `SELECT card_number FROM payments WHERE card_number IS NOT NULL`)
		if err != nil {
			r.t.Fatal(err)
		}
		for rows.Next() {
			var v string
			if err := rows.Scan(&v); err != nil {
				r.t.Fatal(err)
			}
			out[v] = true
		}
		rows.Close()
		conn.Close(ctx)
	}
	return out
}

// checkTiling: for every topic partition, the landed files start at offset 0, and each
// starts right after the previous one ends.
func (r *rig) checkTiling() {
	r.t.Helper()
	type key struct {
		topic string
		p     int32
	}
	byPart := map[key][][2]int64{}
	for _, tb := range r.reg.Tables {
		for _, f := range landedManifests(r.t, r.lake, tb.Name) {
			k := key{f.Topic, *f.Partition}
			byPart[k] = append(byPart[k], [2]int64{*f.OffsetFirst, *f.OffsetLast})
		}
	}
	if len(byPart) == 0 {
		r.t.Fatal("no CDC files landed")
	}
	n := 0
	for k, rs := range byPart {
		sort.Slice(rs, func(i, j int) bool { return rs[i][0] < rs[j][0] })
		next := int64(0)
		for _, rg := range rs {
			if rg[0] != next {
				r.t.Errorf("%s/%d: a file starts at %d, want %d (overlap or gap): %v", k.topic, k.p, rg[0], next, rs)
				break
			}
			next = rg[1] + 1
			n++
		}
	}
	r.t.Logf("exactly once: %d files tile the offsets of %d partitions", n, len(byPart))
}

func landedManifests(t testing.TB, lake, table string) []*landing.Manifest {
	t.Helper()
	var out []*landing.Manifest
	root := filepath.Join(lake, landing.TablePrefix(table))
	_ = filepath.WalkDir(root, func(p string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() || !strings.HasSuffix(p, landing.ManifestSuffix) {
			return nil
		}
		b, err := os.ReadFile(p)
		if err != nil {
			t.Fatal(err)
		}
		m, err := landing.ParseManifest(b)
		if err != nil {
			t.Fatal(err)
		}
		if m.Source == landing.CDC {
			out = append(out, m)
		}
		return nil
	})
	return out
}

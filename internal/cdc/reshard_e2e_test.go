//go:build cdce2e

package cdc_test

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/shopsphere/shardflow/internal/fleet/fleettest"
	"github.com/shopsphere/shardflow/internal/landing"
	"github.com/shopsphere/shardflow/internal/load"
	"github.com/shopsphere/shardflow/internal/objstore/dir"
	"github.com/shopsphere/shardflow/internal/reconcile"
	"github.com/shopsphere/shardflow/internal/registry"
	"github.com/shopsphere/shardflow/internal/warehouse/duckdb"
	"github.com/shopsphere/shardflow/internal/workload"
	"github.com/shopsphere/shardflow/internal/workload/workloadtest"
	"github.com/shopsphere/shardflow/pkg/routing"
)

// reshard is TestE2E's second phase, on the same fleet and CDC stack: live rebalancing
// with both paths running (docs/decisions/0017). Continuous traffic (new orders, status
// changes, refunds, soft deletes, and hard deletes) on every shard, the moving buckets'
// customers included, before, during and after the moves; the batch path extracting
// and loading every closed 1-minute window as the hourly DAG does; tokenize cdc
// following (restarted when shards.yaml changes, as its deployment rolls). During the
// traffic: a split of s03's buckets 3000-3255 onto a new shard s05 (onboarded: its
// cluster, its connector), then a move of buckets 1024-1279 from s01 to s02, each with
// the shardctl move binary; a finance run pinned before the first. After the traffic
// both moves are cleaned up through their gates, everything drains, and:
//
//   - for every bucket and table, count and checksum of the warehouse's latest owned
//     versions, and of fact_orders, equal the current owner's live rows, with the batch
//     files alone, the CDC files alone, and both;
//   - dq (completeness, duplicate keys, unowned rows, the move audit of both moves) passes;
//   - the finance run pinned before the split verifies, and its replay is identical;
//   - shards.yaml with a move's recorded markers 2 s late, or 2 s early, fails the move
//     audit, naming the move.
func reshard(t *testing.T, r *rig, ctx context.Context) {
	whBatch, whCDC := filepath.Join(r.dir, "batch.duckdb"), filepath.Join(r.dir, "cdc.duckdb")
	run := func(env []string, name string, args ...string) (string, int) {
		t.Helper()
		return r.runBin(ctx, env, name, args...)
	}
	must := func(name string, args ...string) string {
		t.Helper()
		return r.mustBin(ctx, name, args...)
	}
	reload := r.reload

	// The split is declared (pull request 1: s05 onboarding, move 2 pending) and deployed
	// before the traffic starts: its cluster, its connector, a consumer that knows it.
	// the batch path covers the whole test: its first window is extract.start, set when
	// the rig was made (the hourly DAG catches up from it)
	phase := r.reg.Extract.Start
	t.Logf("reshard: %s", must("shardctl", "move", "plan", "--from", "s03", "--to", "s05", "--buckets", "3000-3255", "--new-shard", "--write"))
	reload()
	split := len(r.reg.Moves) // the split's epoch
	r.fleet = fleettest.Grow(t, r.fleet, r.reg)
	r.writeConnectSecrets()
	r.apply(ctx, "s05")
	follow := r.startConsumer("--flush-interval", "2s", "--file-records", "2000")

	router := routing.New(r.reg)
	tctx, stopTraffic := context.WithCancel(ctx)
	background := workloadtest.Start(tctx, t, workload.Config{Registry: r.reg, DSNs: r.dsns(), Router: router, Seed: 21, Duration: 10 * time.Minute, Rate: 60, Writers: 2, Customers: 3000})
	var wg sync.WaitGroup
	wg.Add(1)
	var hardDeletes atomic.Int64
	var delMu sync.Mutex
	// order_items keys hard-deleted, as an operator's script would (fenced rows skipped):
	// the batch path cannot see these go
	deleted := map[string]bool{}
	go func() {
		defer wg.Done()
		for tctx.Err() == nil {
			for _, s := range r.fleet.Shards {
				c, err := pgx.Connect(tctx, s.AdminDSN)
				if err != nil {
					continue
				}
				// not in the moving buckets: a hard delete on a move's target after the
				// switch would make verify report the copy missing, rightly (the contract
				// deletes softly; hard deletes are a move's cleanup)
				rows, err := c.Query(tctx, `DELETE FROM order_items WHERE ctid IN (SELECT ctid FROM order_items
					WHERE bucket NOT BETWEEN 1024 AND 1279 AND bucket NOT BETWEEN 3000 AND 3255 ORDER BY updated_at DESC LIMIT 2)
					RETURNING order_id::text || '|' || line_no::text`)
				if err == nil {
					keys, err2 := pgx.CollectRows(rows, pgx.RowTo[string])
					err = err2
					delMu.Lock()
					for _, k := range keys {
						deleted[k] = true
					}
					delMu.Unlock()
					hardDeletes.Add(int64(len(keys)))
				}
				if err != nil && routing.Classify(err) == nil && tctx.Err() == nil {
					t.Errorf("hard delete on %s: %v", s.ID, err)
				}
				c.Close(context.Background())
			}
			select {
			case <-tctx.Done():
			case <-time.After(4 * time.Second):
			}
		}
	}()

	// The batch path: every closed window of every shard and table, once; then loads.
	batch := r.newBatchPath(ctx, phase)
	batchDone := batch.every(tctx, 10*time.Second)

	// A finance run pinned before anything moves.
	time.Sleep(time.Until(phase.Add(2*time.Minute + 10*time.Second)))
	batch.whMu.Lock()
	r.seeds()
	t.Logf("dbt (finance run pre-split): %s", r.dbtBuildAt(ctx, r.whPath, "--vars", "{code_version: cdc-e2e, finance_run_id: pre-split}"))
	batch.whMu.Unlock()

	// probe writes to a row of the moving buckets on shard id as the application would
	// (a no-op update) and returns what the shard's fence says of it.
	probe := func(id string, rg registry.Range) *routing.FenceError {
		t.Helper()
		sh, _ := r.fleet.Shard(id)
		c, err := pgx.Connect(ctx, sh.AdminDSN)
		if err != nil {
			t.Fatal(err)
		}
		defer c.Close(ctx)
		tag, err := c.Exec(ctx, `UPDATE orders SET status = status WHERE order_id = (SELECT order_id FROM orders WHERE bucket BETWEEN $1 AND $2 AND NOT deleted LIMIT 1)`, rg.Lo, rg.Hi)
		if err == nil && tag.RowsAffected() == 0 {
			t.Fatalf("probe %s: no order of buckets %s there", id, rg)
		}
		return routing.Classify(err)
	}
	// moveOnce runs the move's steps with the binary. With a pause, the cutover is killed
	// right after it fenced the source and run again after the pause: the fence is
	// probed in between (a write refused as retryable, so the traffic's writers meet it
	// and retry), and after the switch (the source says the buckets moved, naming the
	// target).
	moveOnce := func(epoch int, pause time.Duration) (held string) {
		t.Helper()
		e := fmt.Sprint(epoch)
		t.Logf("%s", must("shardctl", "move", "start", e))
		mv := r.reg.Moves[epoch-1]
		from, to, buckets := mv.From, mv.To, registry.FormatRanges(mv.Buckets)
		if pause > 0 {
			out, code := run([]string{"SHARDFLOW_MOVE_FAILPOINT=cutover.fence"}, "shardctl", "move", "cutover", e)
			if code != -1 || !strings.Contains(out, "failpoint cutover.fence") {
				t.Fatalf("cutover with a failpoint: exit %d, want killed\n%s", code, out)
			}
			if fe := probe(from, mv.Buckets[0]); fe == nil || fe.Kind != routing.Fenced {
				t.Fatalf("a write to buckets %s on %s with the cutover killed after the fence: %v, want refused as fenced (SF001)", buckets, from, fe)
			}
			t.Logf("cutover killed after the fence; a write on %s is refused as fenced; the traffic meets it for %s", from, pause)
			time.Sleep(pause)
		}
		out := must("shardctl", "move", "cutover", e)
		t.Logf("%s", out)
		if pause > 0 {
			if fe := probe(from, mv.Buckets[0]); fe == nil || fe.Kind != routing.Moved || fe.Peer != to {
				t.Fatalf("a write to buckets %s on %s after the switch: %v, want refused as moved to %s (SF004)", buckets, from, fe, to)
			}
		}
		reload()
		// the recorded fence is deployed: the consumer restarts with it
		if err := follow.stop(); err != nil {
			t.Fatalf("tokenize cdc (follow) exited with %v", err)
		}
		follow = r.startConsumer("--flush-interval", "2s", "--file-records", "2000")
		t.Logf("%s", must("shardctl", "move", "verify", e))
		for _, l := range strings.Split(out, "\n") {
			if strings.Contains(l, "writes to the buckets were refused for") {
				held = l[strings.LastIndex(l, " ")+1:]
			}
		}
		return held
	}
	held2 := moveOnce(split, 0)
	t.Logf("reshard: %s", must("shardctl", "move", "plan", "--from", "s01", "--to", "s02", "--buckets", "1024-1279", "--write"))
	reload()
	moved := len(r.reg.Moves) // the move's epoch
	if err := follow.stop(); err != nil {
		t.Fatalf("tokenize cdc (follow) exited with %v", err)
	}
	follow = r.startConsumer("--flush-interval", "2s", "--file-records", "2000")
	time.Sleep(20 * time.Second) // traffic on the declared, not yet started move
	held3 := moveOnce(moved, 5*time.Second)
	time.Sleep(time.Minute) // traffic after both switches
	stopTraffic()
	wg.Wait()
	traffic := background.Wait()
	if err := <-batchDone; err != nil {
		t.Fatalf("batch path: %v", err)
	}
	t.Logf("reshard traffic: ops %v, rerouted %d, fenced %d, missed %d, %d hard deletes; fences held %s and %s",
		traffic.Ops, traffic.Rerouted, traffic.Fenced, traffic.Missed, hardDeletes.Load(), held2, held3)
	if traffic.Rerouted == 0 || traffic.Fenced == 0 {
		t.Errorf("the traffic met no fence (rerouted %d, fenced %d)", traffic.Rerouted, traffic.Fenced)
	}

	r.drain(ctx, batch, follow)

	// Cleanup: the gates pass now (batch through the markers loaded, CDC landed).
	// the split's cleanup is killed (SIGKILL) after its first table, then run again
	out, code := run([]string{"SHARDFLOW_MOVE_FAILPOINT=cleanup.orders"}, "shardctl", "move", "cleanup", fmt.Sprint(split), "--wait", "2m")
	if code != -1 || !strings.Contains(out, "failpoint cleanup.orders") {
		t.Fatalf("cleanup with a failpoint: exit %d, want killed\n%s", code, out)
	}
	t.Logf("killed mid-cleanup:\n%s", out)
	for _, e := range []string{fmt.Sprint(split), fmt.Sprint(moved)} {
		t.Logf("%s", must("shardctl", "move", "cleanup", e, "--wait", "2m"))
	}
	// the cleanup deletes reach CDC too: land them (they must count nowhere)
	r.waitCaptured(ctx)
	r.runBounded()
	loadOrFail(t, r.loadInto(ctx, r.whPath, ""))
	loadOrFail(t, r.loadInto(ctx, whBatch, landing.Batch))
	loadOrFail(t, r.loadInto(ctx, whCDC, landing.CDC))

	// Every bucket, every table, three ways.
	r.seeds()
	shardSums, err := reconcile.Shards(ctx, r.reg, func(id string) string {
		s, _ := r.fleet.Shard(id)
		return s.AdminDSN
	})
	if err != nil {
		t.Fatal(err)
	}
	for _, wh := range []struct{ name, path string }{{"batch only", whBatch}, {"CDC only", whCDC}, {"batch and CDC", r.whPath}} {
		t.Logf("dbt (%s): %s", wh.name, r.dbtBuildAt(ctx, wh.path, "--exclude", "path:models/marts/finance"))
		w, err := duckdb.Open(ctx, wh.path)
		if err != nil {
			t.Fatal(err)
		}
		ware, err := reconcile.Warehouse(ctx, w.DB(), r.reg, func(s string) string { return s })
		w.Close()
		if err != nil {
			t.Fatal(err)
		}
		diffs := reconcile.Compare(shardSums, ware)
		explained := 0
		for i, d := range diffs {
			// the batch path cannot see a hard delete: a deleted item it landed stays
			if wh.path == whBatch && d.Table == "order_items" && r.onlyHardDeleted(ctx, wh.path, d.Bucket, deleted) {
				explained++
				continue
			}
			if i < 10 {
				t.Errorf("%s: %s bucket %d: shards %s, warehouse %s", wh.name, d.Table, d.Bucket, d.Shards, d.Ware)
			}
		}
		t.Logf("%s: %d buckets × %d tables reconciled with the owners' live rows (%d orders, %d in fact_orders), %d differ (%d by hard-deleted items only, which batch cannot see)",
			wh.name, r.reg.Routing.Buckets, len(r.reg.Tables)+1, shardSums.Rows("orders"), ware.Rows(reconcile.FactOrders), len(diffs)-explained, explained)
	}

	// Batch (Go) and CDC (the Connect transform) landed the same tokens.
	{
		w, err := duckdb.Open(ctx, r.whPath)
		if err != nil {
			t.Fatal(err)
		}
		r.checkSameTokens(ctx, w.DB())
		w.Close()
	}

	// dq over the phase, with the move audit of both moves.
	rangeArgs := []string{"--from", phase.Format("2006-01-02T15:04Z"), "--to", time.Now().UTC().Truncate(time.Minute).Format("2006-01-02T15:04Z"), "--cross-shard"}
	out, code = run(nil, "dq", rangeArgs...)
	if code != 0 {
		t.Fatalf("dq: exit %d\n%s", code, out)
	}
	audits := 0
	for _, l := range strings.Split(out, "\n") {
		if strings.Contains(l, "move_audit") {
			audits++
			t.Logf("%s", l)
		}
	}
	if audits < 2*(len(r.reg.Tables)+1) {
		t.Errorf("dq ran %d move audit checks, want %d (markers and every table, two moves)\n%s", audits, 2*(len(r.reg.Tables)+1), out)
	}

	// Finance: the run pinned before the split still verifies, and replays identically.
	t.Logf("dbt (all, finance): %s", r.dbtBuildAt(ctx, r.whPath))
	finEnv := []string{"SHARDFLOW_DBT_BIN=" + r.dbt, "SHARDFLOW_DBT_SEEDS=" + r.dbtSeeds, "SHARDFLOW_DUCKDB_PATH=" + r.whPath}
	for _, args := range [][]string{{"finance", "verify", "--run", "pre-split"}, {"finance", "replay", "--run", "pre-split"}} {
		out, code := run(finEnv, "shardctl", append(args, "--project", filepath.Join(r.root, "dbt"))...)
		if code != 0 {
			t.Fatalf("shardctl %s: exit %d\n%s", strings.Join(args, " "), code, out)
		}
		t.Logf("shardctl %s: %s", strings.Join(args, " "), strings.TrimSpace(out))
	}

	// Negatives: the move's markers recorded 2 s late, then 2 s early.
	src, err := os.ReadFile(r.regFile)
	if err != nil {
		t.Fatal(err)
	}
	rec := r.reg.Moves[moved-1]
	for _, shift := range []time.Duration{2 * time.Second, -2 * time.Second} {
		f := *rec.Fence
		text := string(src)
		text = strings.Replace(text, f.From.At.Format(time.RFC3339Nano), f.From.At.Add(shift).Format(time.RFC3339Nano), 1)
		text = strings.Replace(text, f.To.At.Format(time.RFC3339Nano), f.To.At.Add(shift).Format(time.RFC3339Nano), 1)
		bad := filepath.Join(r.dir, fmt.Sprintf("shards-shift%s.yaml", shift))
		if err := os.WriteFile(bad, []byte(text), 0o644); err != nil {
			t.Fatal(err)
		}
		out, code := run([]string{"SHARDFLOW_REGISTRY=" + bad}, "dq", rangeArgs...)
		failed := ""
		for _, l := range strings.Split(out, "\n") {
			if strings.Contains(l, "move_audit") && strings.HasPrefix(strings.TrimSpace(l), "FAIL") && strings.Contains(l, fmt.Sprintf("move %d (s01 → s02, buckets 1024-1279)", moved)) {
				failed = l
				break
			}
		}
		if code != 3 || failed == "" {
			t.Errorf("markers shifted %s: dq exit %d, want 3 with a failed move audit naming move %d\n%s", shift, code, moved, out)
			continue
		}
		t.Logf("markers shifted %s: %s", shift, failed)
	}
}

// loadInto loads the lake's files (of one source, or all) into the DuckDB file path.
func (r *rig) loadInto(ctx context.Context, path string, src landing.Source) error {
	wh, err := duckdb.Open(ctx, path)
	if err != nil {
		return err
	}
	defer wh.Close()
	if err := wh.Ensure(ctx, r.reg.Tables); err != nil {
		return err
	}
	l := &load.Loader{Store: dir.Store{Root: r.lake}, Warehouse: wh, Registry: r.reg}
	if _, err := l.LoadAll(ctx, load.Filter{Source: src}); err != nil {
		return fmt.Errorf("load into %s: %w", path, err)
	}
	return nil
}

// onlyHardDeleted reports whether bucket b's order_items differ between the owner shard
// and the warehouse at path only by keys hard-deleted on the shard: every live row is in
// the warehouse at its version, and every extra warehouse row is a deleted key.
func (r *rig) onlyHardDeleted(ctx context.Context, path string, b int, deleted map[string]bool) bool {
	r.t.Helper()
	owner := ""
	for _, s := range r.reg.Shards {
		for _, rg := range s.Buckets {
			if rg.Contains(b) {
				owner = s.ID
			}
		}
	}
	sh, _ := r.fleet.Shard(owner)
	c, err := pgx.Connect(ctx, sh.AdminDSN)
	if err != nil {
		r.t.Fatal(err)
	}
	defer c.Close(ctx)
	live := map[string]int64{}
	rows, err := c.Query(ctx, `SELECT order_id::text || '|' || line_no::text, row_version FROM order_items WHERE bucket = $1 AND NOT deleted`, b)
	if err != nil {
		r.t.Fatal(err)
	}
	for rows.Next() {
		var k string
		var v int64
		if err := rows.Scan(&k, &v); err != nil {
			r.t.Fatal(err)
		}
		live[k] = v
	}
	rows.Close()
	w, err := duckdb.Open(ctx, path)
	if err != nil {
		r.t.Fatal(err)
	}
	defer w.Close()
	wrows, err := w.DB().QueryContext(ctx, `SELECT CAST(order_id AS VARCHAR) || '|' || CAST(line_no AS VARCHAR), row_version FROM intermediate.int_order_items_deduplicated WHERE bucket = ? AND NOT is_removed`, b)
	if err != nil {
		r.t.Fatal(err)
	}
	defer wrows.Close()
	seen := 0
	for wrows.Next() {
		var k string
		var v int64
		if err := wrows.Scan(&k, &v); err != nil {
			r.t.Fatal(err)
		}
		if lv, ok := live[k]; ok {
			if lv != v {
				return false
			}
			seen++
		} else if !deleted[k] {
			return false
		}
	}
	return seen == len(live)
}

// bin is the path of a task binary (make build).
func (r *rig) bin(name string) string { return filepath.Join(r.root, "var", "bin", name) }

// runBin runs a task binary with the rig's environment (and env) and returns its
// output and exit code (-1: killed).
func (r *rig) runBin(ctx context.Context, env []string, name string, args ...string) (string, int) {
	r.t.Helper()
	if _, err := os.Stat(r.bin(name)); err != nil {
		r.t.Fatalf("%s is missing: run `make build`", r.bin(name))
	}
	cmd := exec.CommandContext(ctx, r.bin(name), args...)
	cmd.Env = append(r.childEnvList(), env...)
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	err := cmd.Run()
	var ee *exec.ExitError
	if errors.As(err, &ee) {
		return out.String(), ee.ExitCode()
	}
	if err != nil {
		r.t.Fatalf("%s %v: %v", name, args, err)
	}
	return out.String(), 0
}

// mustBin is runBin that fails the test unless the binary exits 0.
func (r *rig) mustBin(ctx context.Context, name string, args ...string) string {
	r.t.Helper()
	out, code := r.runBin(ctx, nil, name, args...)
	if code != 0 {
		r.t.Fatalf("%s %s: exit %d\n%s", name, strings.Join(args, " "), code, out)
	}
	return out
}

// reload reads the test's shards.yaml again (after a command or the test edited it).
func (r *rig) reload() { r.reg = fleettest.Load(r.t, r.regFile) }

// batchPath is the batch path as the hourly DAG runs it: every closed window of every
// shard and table from its first window on, once each, then a load.
type batchPath struct {
	r     *rig
	ctx   context.Context
	first time.Time
	done  map[string]bool
	whMu  sync.Mutex // DuckDB: one writer per file
	// refused, when set, is called for an extract-window exit other than 0 and 75
	// instead of failing the pass
	refused func(shard, table string, w time.Time, code int, out string)
}

func (r *rig) newBatchPath(ctx context.Context, first time.Time) *batchPath {
	return &batchPath{r: r, ctx: ctx, first: first, done: map[string]bool{}}
}

// drain lands everything once the traffic stopped: it waits for the last window to
// close, runs the batch path twice, stops the following consumer, waits until Debezium
// captured every shard's WAL, runs a bounded consumer and loads.
func (r *rig) drain(ctx context.Context, batch *batchPath, follow *child) {
	r.t.Helper()
	size := r.reg.Extract.Window.Duration
	time.Sleep(time.Until(time.Now().UTC().Truncate(size).Add(size + 6*time.Second)))
	for i := 0; i < 2; i++ {
		if err := batch.pass(); err != nil {
			r.t.Fatalf("batch path: %v", err)
		}
	}
	if err := follow.stop(); err != nil {
		r.t.Fatalf("tokenize cdc (follow) exited with %v", err)
	}
	r.waitCaptured(ctx)
	r.runBounded()
	if err := r.loadInto(ctx, r.whPath, ""); err != nil {
		r.t.Fatal(err)
	}
}

// every runs pass every interval until ctx ends; the channel gets the first error, or
// nil at the end.
func (b *batchPath) every(ctx context.Context, interval time.Duration) <-chan error {
	done := make(chan error, 1)
	go func() {
		for ctx.Err() == nil {
			if err := b.pass(); err != nil {
				done <- err
				return
			}
			select {
			case <-ctx.Done():
			case <-time.After(interval):
			}
		}
		done <- nil
	}()
	return done
}

// pass extracts every closed window not landed yet, then loads everything.
func (b *batchPath) pass() error {
	r := b.r
	now := time.Now().UTC()
	size := r.reg.Extract.Window.Duration
	for _, s := range r.fleet.Shards {
		for _, tb := range r.reg.Tables {
			for w := b.first; !w.Add(size + 5*time.Second).After(now); w = w.Add(size) {
				k := s.ID + "/" + tb.Name + "/" + w.String()
				if b.done[k] {
					continue
				}
				out, code := r.runBin(b.ctx, nil, "extract-window", "--shard", s.ID, "--table", tb.Name, "--window", w.Format(time.RFC3339))
				switch {
				case code == 0:
					b.done[k] = true
				case code == 75: // not closed on this shard yet
				case b.refused != nil:
					b.refused(s.ID, tb.Name, w, code, out)
				default:
					return fmt.Errorf("extract-window %s %s %s: exit %d\n%s", s.ID, tb.Name, w.Format(time.RFC3339), code, out)
				}
			}
		}
	}
	b.whMu.Lock()
	defer b.whMu.Unlock()
	return r.loadInto(b.ctx, r.whPath, "")
}

func loadOrFail(t *testing.T, err error) {
	t.Helper()
	if err != nil {
		t.Fatal(err)
	}
}

// childEnvList is the environment of the binaries the test runs: the registry, the
// tokenizer key and every shard's DSNs (the fleet's env).
func (r *rig) childEnvList() []string {
	env := append(os.Environ(), "SHARDFLOW_REGISTRY="+r.regFile, "SHARDFLOW_ENV=local", "SHARDFLOW_TOKEN_KEY="+testKey)
	for k, v := range r.fleet.Env() {
		env = append(env, k+"="+v)
	}
	return env
}

// writeConnectSecrets writes each shard's replication DSN where the Connect worker's
// config provider reads it.
func (r *rig) writeConnectSecrets() {
	r.t.Helper()
	dsns := map[string]string{}
	for _, s := range r.fleet.Shards {
		dsns[s.ID] = s.ReplicationDSN
	}
	r.stack.WriteSecrets(r.t, r.reg.Tokenizer, dsns, testKey)
}

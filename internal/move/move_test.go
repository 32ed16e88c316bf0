package move

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/shopsphere/shardflow/internal/exitcode"
	"github.com/shopsphere/shardflow/internal/fence"
	"github.com/shopsphere/shardflow/internal/fleet"
	"github.com/shopsphere/shardflow/internal/fleet/fleettest"
	"github.com/shopsphere/shardflow/internal/registry"
	"github.com/shopsphere/shardflow/internal/workload"
	"github.com/shopsphere/shardflow/internal/workload/workloadtest"
	"github.com/shopsphere/shardflow/pkg/routing"
)

// rig is a fleet of the committed shards.yaml with move 2 (buckets 1024-1535, s01 →
// s02) declared in a shards.yaml of its own.
type rig struct {
	t     *testing.T
	fleet *fleet.Fleet
	path  string
}

func newRig(t *testing.T) *rig {
	t.Helper()
	src, err := os.ReadFile("../../shards.yaml")
	if err != nil {
		t.Fatal(err)
	}
	declared, reg, err := registry.DeclareMove(src, registry.Move{Epoch: 2, Buckets: []registry.Range{{Lo: 1024, Hi: 1535}}, From: "s01", To: "s02"}, nil)
	if err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(t.TempDir(), "shards.yaml")
	if err := os.WriteFile(path, declared, 0o644); err != nil {
		t.Fatal(err)
	}
	return &rig{t: t, fleet: fleettest.Start(t, reg), path: path}
}

func (r *rig) mover(out *bytes.Buffer) *Mover {
	r.t.Helper()
	reg, err := registry.Load(r.path)
	if err != nil {
		r.t.Fatal(err)
	}
	return &Mover{Path: r.path, Registry: reg, Epoch: 2, Out: out,
		DSN: func(id string) (string, string, error) {
			s, ok := r.fleet.Shard(id)
			if !ok {
				return "", "", fmt.Errorf("no shard %s", id)
			}
			return s.AdminDSN, s.ReplicationDSN, nil
		}}
}

func (r *rig) dsns() map[string]string {
	m := map[string]string{}
	for _, s := range r.fleet.Shards {
		m[s.ID] = s.AdminDSN
	}
	return m
}

// liveRows is key → (version, content hash) of one table's rows of buckets 1024-1535.
func (r *rig) liveRows(shard, table string) map[string]string {
	r.t.Helper()
	s, _ := r.fleet.Shard(shard)
	ctx := context.Background()
	c, err := pgx.Connect(ctx, s.AdminDSN)
	if err != nil {
		r.t.Fatal(err)
	}
	defer c.Close(ctx)
	rows, err := c.Query(ctx, "SELECT md5(x::text), row_version FROM "+table+" x WHERE bucket BETWEEN 1024 AND 1535")
	if err != nil {
		r.t.Fatal(err)
	}
	out := map[string]string{}
	for rows.Next() {
		var h string
		var v int64
		if err := rows.Scan(&h, &v); err != nil {
			r.t.Fatal(err)
		}
		out[h] = fmt.Sprint(v)
	}
	return out
}

// A live move under traffic, step by step: the copy runs while the generator writes
// new orders, status changes and refunds in the moving buckets; cutover fences, drains
// and switches with the generator still writing (it waits out the fence and reroutes);
// verify finds every source row on the target; the fence lands in shards.yaml and the
// registry then judges each shard by its own marker; cleanup is refused without gates.
func TestLiveMove(t *testing.T) {
	r := newRig(t)
	ctx, cancel := context.WithTimeout(context.Background(), 4*time.Minute)
	defer cancel()
	reg, err := registry.Load(r.path)
	if err != nil {
		t.Fatal(err)
	}
	router := routing.New(reg)
	tctx, stop := context.WithCancel(ctx)
	traffic := workloadtest.Start(tctx, t, workload.Config{Registry: reg, DSNs: r.dsns(), Router: router, Seed: 5, Duration: time.Minute, Rate: 150, Writers: 2, Customers: 1500})
	time.Sleep(2 * time.Second)

	var out bytes.Buffer
	m := r.mover(&out)
	if err := m.Start(ctx); err != nil {
		t.Fatalf("start: %v\n%s", err, out.String())
	}
	// started twice: nothing new
	if err := r.mover(&out).Start(ctx); err != nil {
		t.Fatalf("start again: %v\n%s", err, out.String())
	}
	time.Sleep(2 * time.Second)
	res, err := r.mover(&out).Cutover(ctx)
	if err != nil {
		t.Fatalf("cutover: %v\n%s", err, out.String())
	}
	if !res.Recorded || res.Held <= 0 || res.Fence.From.At.IsZero() || res.Fence.To.LSN == "" {
		t.Fatalf("cutover result %+v", res)
	}
	time.Sleep(2 * time.Second) // traffic on s02 after the switch
	stop()
	st := traffic.Wait()
	if st.Rerouted == 0 {
		t.Errorf("the generator rerouted nothing: %+v", st)
	}

	checks, err := r.mover(&out).Verify(ctx)
	if err != nil {
		t.Fatalf("verify: %v\n%s", err, out.String())
	}
	for _, c := range checks {
		if c.Source == 0 || c.Same+c.Newer != c.Source {
			t.Errorf("verify %s: %+v", c.Table, c)
		}
	}
	rec, err := registry.Load(r.path)
	if err != nil {
		t.Fatal(err)
	}
	mv := rec.Moves[1]
	if mv.Pending() || *mv.Fence != res.Fence {
		t.Fatalf("shards.yaml records %+v, the cutover wrote %+v", mv, res.Fence)
	}
	if s01, _ := rec.Shard("s01"); registry.FormatRanges(s01.Buckets) != "1536-2047" {
		t.Errorf("s01 owns %s after the move", registry.FormatRanges(s01.Buckets))
	}
	// Every row of the buckets on s02 stamped before its marker is a copy of s01's;
	// every row on s01 is stamped before s01's marker: each shard's own view owns
	// exactly the changes that happened there.
	for _, table := range fleet.Tables {
		src, dst := r.liveRows("s01", table), r.liveRows("s02", table)
		if len(src) == 0 {
			t.Errorf("%s: no rows of the buckets on s01", table)
		}
		copied := 0
		for h := range src {
			if _, ok := dst[h]; ok {
				copied++
			}
		}
		t.Logf("%s: %d rows on s01, %d identical on s02, %d on s02", table, len(src), copied, len(dst))
	}
	assertStampedByMarkers(t, r, rec)

	if _, err := r.mover(&out).Cleanup(ctx); exitcode.Of(err) != exitcode.Usage || !strings.Contains(err.Error(), "cleanup needs the warehouse") {
		t.Errorf("cleanup without gates: %v", err)
	}
	t.Logf("move output:\n%s", out.String())
}

// assertStampedByMarkers: s01 holds no row of the moved buckets stamped at or after
// its marker, and s02's rows stamped at or after its marker are all owned by it.
func assertStampedByMarkers(t *testing.T, r *rig, reg *registry.Registry) {
	t.Helper()
	f := reg.Moves[1].Fence
	ctx := context.Background()
	for _, side := range []struct {
		shard string
		q     string
		at    time.Time
	}{
		{"s01", "updated_at >= $1", f.From.At},
		{"s02", "updated_at < $1", f.To.At},
	} {
		s, _ := r.fleet.Shard(side.shard)
		c, err := pgx.Connect(ctx, s.AdminDSN)
		if err != nil {
			t.Fatal(err)
		}
		for _, table := range fleet.Tables {
			rows, err := c.Query(ctx, "SELECT bucket, updated_at FROM "+table+" WHERE bucket BETWEEN 1024 AND 1535")
			if err != nil {
				t.Fatal(err)
			}
			owned, not := 0, 0
			for rows.Next() {
				var b int
				var at time.Time
				if err := rows.Scan(&b, &at); err != nil {
					t.Fatal(err)
				}
				if reg.Owns(side.shard, b, at) {
					owned++
				} else {
					not++
				}
			}
			rows.Close()
			switch side.shard {
			case "s01":
				if not != 0 {
					t.Errorf("s01 %s: %d rows of the buckets stamped after its fence marker", table, not)
				}
			case "s02":
				t.Logf("s02 %s: %d rows owned (written after its switch), %d copies", table, owned, not)
			}
		}
		c.Close(ctx)
	}
}

// Abort before the switch undoes everything: the source owns and writes on, the
// target holds nothing of the buckets, no publication, subscription or slot is left.
func TestAbortBeforeSwitch(t *testing.T) {
	r := newRig(t)
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	reg, _ := registry.Load(r.path)
	if _, err := workload.Run(ctx, workload.Config{Registry: reg, DSNs: r.dsns(), Seed: 9, Orders: 300, Writers: 1, Customers: 500}); err != nil {
		t.Fatal(err)
	}
	var out bytes.Buffer
	if err := r.mover(&out).Start(ctx); err != nil {
		t.Fatalf("start: %v\n%s", err, out.String())
	}
	if err := r.mover(&out).Abort(ctx); err != nil {
		t.Fatalf("abort: %v\n%s", err, out.String())
	}
	for _, table := range fleet.Tables {
		if n := len(r.liveRows("s02", table)); n != 0 {
			t.Errorf("%s: %d copies left on s02", table, n)
		}
	}
	for _, id := range []string{"s01", "s02"} {
		s, _ := r.fleet.Shard(id)
		c, err := pgx.Connect(ctx, s.AdminDSN)
		if err != nil {
			t.Fatal(err)
		}
		var left int
		err = c.QueryRow(ctx, `SELECT (SELECT count(*) FROM pg_publication WHERE pubname LIKE 'shardflow_move_%')
			+ (SELECT count(*) FROM pg_subscription WHERE subname LIKE 'shardflow_move_%')
			+ (SELECT count(*) FROM pg_replication_slots WHERE slot_name LIKE 'shardflow_move_%')
			+ (SELECT count(*) FROM `+fence.Table+`)`).Scan(&left)
		c.Close(ctx)
		if err != nil || left != 0 {
			t.Errorf("%s: %d objects of the move left (%v)", id, left, err)
		}
	}
	// s01 writes its buckets again
	if _, err := workload.Run(ctx, workload.Config{Registry: reg, DSNs: r.dsns(), Seed: 10, Orders: 100, Writers: 1, Customers: 500}); err != nil {
		t.Fatalf("traffic after the abort: %v", err)
	}
	t.Logf("%s", out.String())
}

package extract

import (
	"context"
	"errors"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/shopsphere/shardflow/internal/exitcode"
	"github.com/shopsphere/shardflow/internal/extract/extracttest"
	"github.com/shopsphere/shardflow/internal/registry"
	"github.com/shopsphere/shardflow/internal/window"
)

// pendingRegistry is shards.yaml (1h windows, no lag) with move 2 declared pending:
// buckets 1024-1279 from s01 to s02.
func pendingRegistry(t *testing.T) *registry.Registry {
	t.Helper()
	src, err := os.ReadFile("../../shards.yaml")
	if err != nil {
		t.Fatal(err)
	}
	text := strings.Replace(string(src), "safety_lag: 5m", "safety_lag: 0s", 1)
	out, reg, err := registry.DeclareMove([]byte(text), registry.Move{Epoch: 2, Buckets: []registry.Range{{Lo: 1024, Hi: 1279}}, From: "s01", To: "s02"}, nil)
	if err != nil || out == nil {
		t.Fatal(err)
	}
	return reg
}

// A pending move is judged in the extract's snapshot by each shard's own fence rows:
// with no marker yet the source lands everything and the target nothing of the
// buckets; once the markers are written (the target's clock 3 s behind the source's),
// the source lands only what is stamped before its marker and the target only what is
// stamped at or after its own. After the move's cleanup a window of the source before
// its marker is refused, naming the move.
func TestPendingMoveJudgedByTheShardsFences(t *testing.T) {
	ctx := context.Background()
	reg := pendingRegistry(t)
	shards := startShards(t, reg)
	w := window.Window{Start: time.Date(2026, 11, 30, 10, 0, 0, 0, time.UTC), End: time.Date(2026, 11, 30, 11, 0, 0, 0, time.UTC)}
	srcMark := w.Start.Add(30 * time.Minute) // s01's marker, its clock
	dstMark := srcMark.Add(-3 * time.Second) // s02's marker: its clock runs 3 s slow
	var moving []int64                       // customers in buckets 1024-1279
	for c := int64(1); len(moving) < 4; c++ {
		if b := reg.Bucket(c); b >= 1024 && b <= 1279 {
			moving = append(moving, c)
		}
	}
	a1, a2 := connect(t, shards["s01"].AdminDSN), connect(t, shards["s02"].AdminDSN)
	// s01: 60 rows over the whole window; s02: 60 rows over its second half (the
	// copies of s01's rows would carry s01's stamps; these stand for writes after the
	// switch and, before dstMark, for copies)
	if err := extracttest.Fill(ctx, a1, reg, extracttest.Spec{Table: "orders", Rows: 60, From: w.Start, To: w.End, Customers: moving, Seed: "src"}); err != nil {
		t.Fatal(err)
	}
	if err := extracttest.Fill(ctx, a2, reg, extracttest.Spec{Table: "orders", Rows: 60, From: srcMark.Add(-10 * time.Minute), To: w.End, Customers: moving, Seed: "dst"}); err != nil {
		t.Fatal(err)
	}
	count := func(shard string, want int) {
		t.Helper()
		e, _ := newTestExtractor(t, reg, connect(t, shards[shard].ExtractDSN))
		res, err := e.Run(ctx, Job{Shard: shard, Table: "orders", Window: w})
		if err != nil {
			t.Fatalf("%s: %v", shard, err)
		}
		if res.Manifest.Rows != int64(want) {
			t.Errorf("%s landed %d rows of the window, want %d (unowned %d)", shard, res.Manifest.Rows, want, res.Unowned)
		}
	}
	// no markers: the source owns on, the target owns nothing yet
	count("s01", 60)
	count("s02", 0)

	if _, err := a1.Exec(ctx, `INSERT INTO shardflow_bucket_fence (epoch, role, bucket_lo, bucket_hi, state, peer, marker_at, marker_lsn) VALUES (2, 'from', 1024, 1279, 'moved', 's02', $1, '0/10')`, srcMark); err != nil {
		t.Fatal(err)
	}
	if _, err := a2.Exec(ctx, `INSERT INTO shardflow_bucket_fence (epoch, role, bucket_lo, bucket_hi, state, peer, marker_at, marker_lsn) VALUES (2, 'to', 1024, 1279, 'owned', 's01', $1, '0/20')`, dstMark); err != nil {
		t.Fatal(err)
	}
	// Fill spreads rows evenly: 30 of s01's 60 are before its marker; s02's 60 span
	// [srcMark-10m, w.End) = 40 minutes, 10 minutes minus 3 s of it before dstMark
	var s02Before int
	if err := a2.QueryRow(ctx, `SELECT count(*) FROM orders WHERE updated_at < $1`, dstMark).Scan(&s02Before); err != nil {
		t.Fatal(err)
	}
	count("s01", 30)
	count("s02", 60-s02Before)

	// the source cleaned up: its windows before the marker are not extracted again
	if _, err := a1.Exec(ctx, `UPDATE shardflow_bucket_fence SET cleaned_at = now() WHERE epoch = 2`); err != nil {
		t.Fatal(err)
	}
	e, _ := newTestExtractor(t, reg, connect(t, shards["s01"].ExtractDSN))
	_, err := e.Run(ctx, Job{Shard: "s01", Table: "orders", Window: w})
	if !errors.Is(err, ErrMovedAway) || exitcode.Of(err) != exitcode.CheckFail || !strings.Contains(err.Error(), "move 2 cleaned buckets 1024-1279 off this shard") {
		t.Errorf("re-extracting s01 after the cleanup: %v (exit %d), want exit 3 naming move 2", err, exitcode.Of(err))
	}
}

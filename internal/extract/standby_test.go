package extract

import (
	"context"
	"errors"
	"os"
	"sync"
	"testing"
	"time"

	"github.com/shopsphere/shardflow/internal/exitcode"
	"github.com/shopsphere/shardflow/internal/extract/extracttest"
	"github.com/shopsphere/shardflow/internal/fleet/fleettest"
	"github.com/shopsphere/shardflow/internal/window"
	"github.com/shopsphere/shardflow/internal/workload"
)

// TestExtractFromStandby: decisions/0026. A window read from a real hot standby
// (pg_basebackup -R of the shard, streaming) under write traffic lands byte for byte
// what a run on the primary lands. The attack: the standby's replay is paused
// (pg_wal_replay_pause), then rows inside the closed window commit on the primary (a
// transaction that began before the window's end, committing just before the check).
// The check on the primary passes; a read that did not wait for the standby to replay
// past the check lands the window without those rows (shown, with the wait skipped), a
// bounded wait gives up retryably, and RunFromStandby waits until replay resumes and
// lands every row.
func TestExtractFromStandby(t *testing.T) {
	ctx := context.Background()
	b, err := os.ReadFile("../../shards.yaml")
	if err != nil {
		t.Fatal(err)
	}
	reg, err := extracttest.OneShard(b, "s00")
	if err != nil {
		t.Fatal(err)
	}
	f := fleettest.Start(t, reg)
	sh := f.Shards[0]
	admin := connect(t, sh.AdminDSN)
	w := window.Window{Start: time.Date(2026, 3, 10, 12, 0, 0, 0, time.UTC)}
	w.End = w.Start.Add(reg.Extract.Window.Duration)
	custs := extracttest.CustomersOwnedBy(reg, "s00", w.Start, 500, 1)
	fill := func(rows int, from, to time.Time, seed string) {
		t.Helper()
		if err := extracttest.Fill(ctx, admin, reg, extracttest.Spec{Table: "orders", Rows: rows, From: from, To: to, Customers: custs, Seed: seed}); err != nil {
			t.Fatal(err)
		}
	}
	const baseRows, lateRows = 20_000, 3_000
	fill(baseRows, w.Start, w.End, "base")
	fill(baseRows, w.Start.Add(-30*24*time.Hour), w.Start, "before")

	sb := fleettest.StartStandby(t, f, "s00")
	sbAdmin := connect(t, sb.AdminDSN)

	// OLTP traffic on the primary for the whole test (its rows are today's, outside w).
	tctx, stopTraffic := context.WithCancel(ctx)
	var traffic sync.WaitGroup
	var trafficErr error
	var trafficStats *workload.Stats
	traffic.Add(1)
	go func() {
		defer traffic.Done()
		trafficStats, trafficErr = workload.Run(tctx, workload.Config{Registry: reg, DSNs: map[string]string{"s00": sh.AdminDSN},
			Seed: 26, Duration: 5 * time.Minute, Rate: 100, Writers: 2, Customers: 2000})
	}()
	defer func() {
		stopTraffic()
		traffic.Wait()
		if trafficErr != nil && !errors.Is(trafficErr, context.Canceled) {
			t.Errorf("traffic: %v", trafficErr)
		}
		if trafficStats == nil || trafficStats.Ops["new_order"] == 0 {
			t.Errorf("no traffic was written during the test")
		}
	}()

	fixed := time.Date(2026, 12, 1, 0, 0, 0, 0, time.UTC)
	extractor := func() (*Extractor, lakeT) {
		ex, lake := newTestExtractor(t, reg, connect(t, sh.ExtractDSN))
		ex.Now = func() time.Time { return fixed }
		return ex, lake
	}
	job := Job{Shard: "s00", Table: "orders", Window: w}
	// fromPrimary is the reference: the same window landed by Run on the primary.
	fromPrimary := func() *Result {
		t.Helper()
		ex, _ := extractor()
		res, err := ex.Run(ctx, job)
		if err != nil {
			t.Fatalf("extract from the primary: %v", err)
		}
		return res
	}
	same := func(what string, got, want *Result) {
		t.Helper()
		g, w := got.Manifest, want.Manifest
		if g.Rows != w.Rows || g.Checksum != w.Checksum || g.DataSHA256 != w.DataSHA256 {
			t.Errorf("%s: landed %d rows checksum %s sha256 %s; the primary lands %d rows checksum %s sha256 %s",
				what, g.Rows, g.Checksum, g.DataSHA256, w.Rows, w.Checksum, w.DataSHA256)
		}
	}

	// 1. A streaming standby, caught up or nearly: the same bytes as the primary.
	ex, _ := extractor()
	res, rw, err := ex.RunFromStandby(ctx, job, &Standby{Conn: connect(t, sb.ExtractDSN)})
	if err != nil {
		t.Fatalf("extract from the standby: %v", err)
	}
	if res.Manifest.Rows != baseRows {
		t.Errorf("standby landed %d rows, want %d", res.Manifest.Rows, baseRows)
	}
	same("streaming standby", res, fromPrimary())
	t.Logf("streaming standby: primary %s, replayed %s, waited %s (%d polls)", rw.PrimaryLSN, rw.ReplayLSN, rw.Waited, rw.Polls)

	// 2. The attack: replay paused, then rows of the closed window commit on the primary.
	if _, err := sbAdmin.Exec(ctx, "SELECT pg_wal_replay_pause()"); err != nil {
		t.Fatal(err)
	}
	for deadline := time.Now().Add(30 * time.Second); ; {
		var state string
		if err := sbAdmin.QueryRow(ctx, "SELECT pg_get_wal_replay_pause_state()").Scan(&state); err != nil {
			t.Fatal(err)
		}
		if state == "paused" {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("standby replay state %q after 30s, want paused", state)
		}
		time.Sleep(20 * time.Millisecond)
	}
	fill(lateRows, w.Start, w.End, "late")

	// 2a. The broken version (no wait) reads the paused standby: the late rows are missing.
	// This proves the attack bites; the real path below must not land this.
	ex, lake := extractor()
	broken, _, err := ex.RunFromStandby(ctx, job, &Standby{Conn: connect(t, sb.ExtractDSN), skipWait: true})
	if err != nil {
		t.Fatalf("extract from the paused standby without waiting: %v", err)
	}
	if broken.Manifest.Rows != baseRows || len(lake.keys(t, broken)) != baseRows {
		t.Fatalf("without the wait the paused standby landed %d rows; the attack needs it to miss the %d late ones (%d)", broken.Manifest.Rows, lateRows, baseRows)
	}

	// 2b. A bounded wait on a paused standby gives up, retryably, naming both positions.
	ex, _ = extractor()
	_, rw, err = ex.RunFromStandby(ctx, job, &Standby{Conn: connect(t, sb.ExtractDSN), MaxWait: 300 * time.Millisecond})
	if !errors.Is(err, ErrStandbyBehind) || exitcode.Of(err) != exitcode.Retryable {
		t.Errorf("paused standby with MaxWait 300ms = %v (exit %d), want ErrStandbyBehind with exit 75", err, exitcode.Of(err))
	} else {
		t.Logf("bounded wait: %v", err)
	}

	// 2c. The real path waits: replay resumes after a pause, then the window lands whole.
	const resumeAfter = 1500 * time.Millisecond
	resumed := make(chan error, 1)
	go func() {
		time.Sleep(resumeAfter)
		_, err := sbAdmin.Exec(ctx, "SELECT pg_wal_replay_resume()")
		resumed <- err
	}()
	ex, lake = extractor()
	res, rw, err = ex.RunFromStandby(ctx, job, &Standby{Conn: connect(t, sb.ExtractDSN)})
	if err := <-resumed; err != nil {
		t.Fatal(err)
	}
	if err != nil {
		t.Fatalf("extract from the lagging standby: %v", err)
	}
	if rw.Waited < resumeAfter/2 || rw.Polls < 2 {
		t.Errorf("RunFromStandby waited %s (%d polls) for a standby paused for %s: it did not wait for replay", rw.Waited, rw.Polls, resumeAfter)
	}
	if res.Manifest.Rows != baseRows+lateRows || len(lake.keys(t, res)) != baseRows+lateRows {
		t.Errorf("lagging standby: landed %d rows, want %d (the %d late rows committed before the check)", res.Manifest.Rows, baseRows+lateRows, lateRows)
	}
	same("lagging standby", res, fromPrimary())
	t.Logf("lagging standby: primary %s, replayed %s, waited %s (%d polls)", rw.PrimaryLSN, rw.ReplayLSN, rw.Waited.Round(time.Millisecond), rw.Polls)
}

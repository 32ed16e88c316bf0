package pause_test

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/shopsphere/shardflow/internal/exitcode"
	"github.com/shopsphere/shardflow/internal/objstore/dir"
	"github.com/shopsphere/shardflow/internal/pause"
)

func TestPauseLifecycle(t *testing.T) {
	ctx := context.Background()
	store := dir.Store{Root: t.TempDir()}
	if p, err := pause.Get(ctx, store, "s01"); err != nil || p != nil {
		t.Fatalf("before: %+v %v, want not paused", p, err)
	}
	if _, err := pause.Set(ctx, store, pause.Pause{Shard: "s01", By: "alice"}); exitcode.Of(err) != exitcode.Usage {
		t.Fatalf("pause without a reason: %v, want a usage error", err)
	}
	first := time.Date(2026, 12, 3, 7, 0, 0, 0, time.UTC)
	if _, err := pause.Set(ctx, store, pause.Pause{Shard: "s01", Reason: "disk swap", By: "alice", At: first}); err != nil {
		t.Fatal(err)
	}
	// pausing again keeps the first pause: its time is where the skipped windows begin
	again, err := pause.Set(ctx, store, pause.Pause{Shard: "s01", Reason: "other", By: "bob"})
	if err != nil || !again.At.Equal(first) || again.By != "alice" {
		t.Fatalf("second pause: %+v %v, want the first kept", again, err)
	}
	if _, err := pause.Set(ctx, store, pause.Pause{Shard: "s03", Reason: "r", By: "bob"}); err != nil {
		t.Fatal(err)
	}
	ps, err := pause.List(ctx, store)
	if err != nil || len(ps) != 2 || ps[0].Shard != "s01" || ps[1].Shard != "s03" {
		t.Fatalf("list: %+v %v", ps, err)
	}
	p, _ := pause.Get(ctx, store, "s01")
	if e := p.Err(); exitcode.Of(e) != exitcode.Paused || !strings.Contains(e.Error(), "shard s01 is paused by alice since 2026-12-03T07:00:00Z (disk swap)") {
		t.Fatalf("error %v (exit %d)", e, exitcode.Of(e))
	}
	if old, err := pause.Clear(ctx, store, "s01"); err != nil || old == nil || old.Reason != "disk swap" {
		t.Fatalf("clear: %+v %v", old, err)
	}
	if old, err := pause.Clear(ctx, store, "s01"); err != nil || old != nil {
		t.Fatalf("clear again: %+v %v, want nothing to clear", old, err)
	}
}

func TestPausedRanksBelowEveryOtherCode(t *testing.T) {
	paused := exitcode.Errorf(exitcode.Paused, "paused")
	if got := exitcode.Worst(paused, exitcode.Errorf(exitcode.Retryable, "r")); got != exitcode.Retryable {
		t.Fatalf("worst of paused and 75: %d", got)
	}
	if got := exitcode.Worst(paused); got != exitcode.Paused {
		t.Fatalf("worst of paused alone: %d", got)
	}
}

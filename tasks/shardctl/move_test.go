package main

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/shopsphere/shardflow/internal/fleet"
	"github.com/shopsphere/shardflow/internal/fleet/fleettest"
	"github.com/shopsphere/shardflow/internal/registry"
	"github.com/shopsphere/shardflow/internal/workload"
	"github.com/shopsphere/shardflow/internal/workload/workloadtest"
	"github.com/shopsphere/shardflow/pkg/routing"
)

var binPath string

func TestMain(m *testing.M) {
	dir, err := os.MkdirTemp("", "shardctl-bin-")
	if err != nil {
		panic(err)
	}
	binPath = filepath.Join(dir, "shardctl")
	if out, err := exec.Command("go", "build", "-o", binPath, ".").CombinedOutput(); err != nil {
		fmt.Fprintf(os.Stderr, "build shardctl: %v\n%s", err, out)
		os.Exit(1)
	}
	code := m.Run()
	os.RemoveAll(dir)
	os.Exit(code)
}

// The move tool killed (SIGKILL) right after every step's effect, and run again, under
// continuous traffic: a split of s01's buckets 1536-2047 onto a new shard s04, from
// `move plan --write` to a verified switch. Each run resumes where the killed one
// stopped; the end state is that of a run never killed: the fence in shards.yaml equals
// both shards' markers, every source row is on the target (verify), the source holds
// nothing stamped after its marker, the copy's subscription and slot are gone, and the
// traffic never failed.
func TestMoveKilledAtEveryStep(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "shards.yaml")
	src, err := os.ReadFile("../../shards.yaml")
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(path, src, 0o644); err != nil {
		t.Fatal(err)
	}
	run := func(failpoint string, args ...string) (string, int) {
		t.Helper()
		cmd := exec.Command(binPath, args...)
		cmd.Env = append(os.Environ(), "SHARDFLOW_REGISTRY="+path, "SHARDFLOW_MOVE_FAILPOINT="+failpoint)
		cmd.Env = append(cmd.Env, envList(fleetEnv)...)
		var out bytes.Buffer
		cmd.Stdout, cmd.Stderr = &out, &out
		err := cmd.Run()
		var ee *exec.ExitError
		switch {
		case err == nil:
			return out.String(), 0
		case errors.As(err, &ee) && ee.Sys().(syscall.WaitStatus).Signaled():
			return out.String(), -int(ee.Sys().(syscall.WaitStatus).Signal())
		case errors.As(err, &ee):
			return out.String(), ee.ExitCode()
		}
		t.Fatalf("shardctl %v: %v", args, err)
		return "", 0
	}

	// declare the split, then bring up the fleet of the declared registry (s04 included)
	if out, code := run("", "move", "plan", "--from", "s01", "--to", "s04", "--buckets", "1536-2047", "--new-shard", "--write"); code != 0 {
		t.Fatalf("move plan: exit %d\n%s", code, out)
	}
	reg, err := registry.Load(path)
	if err != nil {
		t.Fatal(err)
	}
	f := fleettest.Start(t, reg)
	fleetEnv = f.Env()
	dsns := map[string]string{}
	for _, s := range f.Shards {
		dsns[s.ID] = s.AdminDSN
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	tctx, stopTraffic := context.WithCancel(ctx)
	traffic := workloadtest.Start(tctx, t, workload.Config{Registry: reg, DSNs: dsns, Router: routing.New(reg), Seed: 11, Duration: 5 * time.Minute, Rate: 100, Writers: 2, Customers: 2000})
	time.Sleep(time.Second)

	steps := []struct{ cmd, failpoint string }{
		{"start", "start.fence"}, {"start", "start.publication"}, {"start", "start.subscription"}, {"start", ""},
		{"cutover --dry-run", ""}, // prints the steps, changes nothing (checked below)
		{"cutover", "cutover.fence"}, {"cutover", "cutover.marker-from"}, {"cutover", "cutover.unsubscribed"},
		{"cutover", "cutover.marker-to"}, {"cutover", "cutover.moved"}, {"cutover", "cutover.recorded"}, {"cutover", ""},
		{"verify", "verify.done"}, {"verify", ""},
	}
	var log strings.Builder
	for _, s := range steps {
		cmd := strings.Fields(s.cmd)
		out, code := run(s.failpoint, append([]string{"move", cmd[0], "2"}, cmd[1:]...)...)
		fmt.Fprintf(&log, "$ move %s 2 (failpoint %q): exit %d\n%s", s.cmd, s.failpoint, code, out)
		want := 0
		if s.failpoint != "" {
			want = -int(syscall.SIGKILL)
		}
		if code != want {
			t.Fatalf("move %s with failpoint %q: exit %d, want %d\n%s", s.cmd, s.failpoint, code, want, log.String())
		}
		if s.cmd == "cutover --dry-run" {
			s01, _ := f.Shard("s01")
			if n := countRows(t, s01.AdminDSN, "SELECT count(*) FROM shardflow_bucket_fence"); n != 0 || !strings.Contains(out, "would fence s01") {
				t.Fatalf("a dry-run cutover wrote %d fence rows on s01 or printed no steps:\n%s", n, out)
			}
		}
	}
	time.Sleep(time.Second)
	stopTraffic()
	st := traffic.Wait()

	rec, err := registry.Load(path)
	if err != nil {
		t.Fatal(err)
	}
	mv := rec.Moves[len(rec.Moves)-1]
	if mv.Pending() || mv.Fence == nil {
		t.Fatalf("shards.yaml does not record the move:\n%s", log.String())
	}
	if s04, _ := rec.Shard("s04"); s04.State != registry.StateActive || registry.FormatRanges(s04.Buckets) != "1536-2047" {
		t.Errorf("s04 after the split: %+v", s04)
	}
	s01, _ := f.Shard("s01")
	s04, _ := f.Shard("s04")
	checkMarker(t, s01.AdminDSN, "from", mv.Fence.From)
	checkMarker(t, s04.AdminDSN, "to", mv.Fence.To)
	var late, leftovers int
	q := func(dsn, sql string, args ...any) int {
		c, err := pgx.Connect(ctx, dsn)
		if err != nil {
			t.Fatal(err)
		}
		defer c.Close(ctx)
		var n int
		if err := c.QueryRow(ctx, sql, args...).Scan(&n); err != nil {
			t.Fatal(err)
		}
		return n
	}
	for _, table := range fleet.Tables {
		late += q(s01.AdminDSN, "SELECT count(*) FROM "+table+" WHERE bucket BETWEEN 1536 AND 2047 AND updated_at >= $1", mv.Fence.From.At)
	}
	leftovers += q(s04.AdminDSN, "SELECT count(*) FROM pg_subscription")
	leftovers += q(s01.AdminDSN, "SELECT count(*) FROM pg_replication_slots WHERE slot_name LIKE 'shardflow_move_%'")
	if late != 0 || leftovers != 0 {
		t.Errorf("s01 rows after its marker %d, subscriptions/slots left %d", late, leftovers)
	}
	if st.Rerouted == 0 {
		t.Errorf("the traffic was never rerouted to s04: %+v", st)
	}
	t.Logf("traffic: ops %v rerouted %d fenced %d\n%s", st.Ops, st.Rerouted, st.Fenced, log.String())
}

var fleetEnv map[string]string

func countRows(t *testing.T, dsn, q string) int {
	t.Helper()
	c, err := pgx.Connect(context.Background(), dsn)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close(context.Background())
	var n int
	if err := c.QueryRow(context.Background(), q).Scan(&n); err != nil {
		t.Fatal(err)
	}
	return n
}

func envList(m map[string]string) []string {
	var out []string
	for k, v := range m {
		out = append(out, k+"="+v)
	}
	return out
}

// checkMarker: the shard's fence rows hold the marker shards.yaml records.
func checkMarker(t *testing.T, dsn, role string, want registry.Marker) {
	t.Helper()
	ctx := context.Background()
	c, err := pgx.Connect(ctx, dsn)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close(ctx)
	var at time.Time
	var lsn string
	if err := c.QueryRow(ctx, "SELECT marker_at, marker_lsn::text FROM shardflow_bucket_fence WHERE role = $1", role).Scan(&at, &lsn); err != nil {
		t.Fatal(err)
	}
	if !at.Equal(want.At) || lsn != want.LSN {
		t.Errorf("%s marker on the shard %s %s, shards.yaml %s %s", role, at.Format(time.RFC3339Nano), lsn, want.At.Format(time.RFC3339Nano), want.LSN)
	}
}

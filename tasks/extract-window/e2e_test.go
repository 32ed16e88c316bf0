package main

import (
	"bufio"
	"context"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/shopsphere/shardflow/internal/dq"
	"github.com/shopsphere/shardflow/internal/fleet"
	"github.com/shopsphere/shardflow/internal/fleet/fleettest"
	"github.com/shopsphere/shardflow/internal/landing"
	"github.com/shopsphere/shardflow/internal/registry"
	"github.com/shopsphere/shardflow/internal/warehouse/duckdb"
	"github.com/shopsphere/shardflow/internal/window"
)

const testKey = "test-tokenizer-key-0123456789abcdef"

var binary string

func TestMain(m *testing.M) {
	dir, err := os.MkdirTemp("", "extract-window-bin-")
	if err != nil {
		panic(err)
	}
	binary = filepath.Join(dir, "extract-window")
	out, err := exec.Command("go", "build", "-o", binary, ".").CombinedOutput()
	if err != nil {
		os.Stderr.Write(out)
		panic(err)
	}
	code := m.Run()
	os.RemoveAll(dir)
	os.Exit(code)
}

// env is one test's world: a fleet, a landing zone, a registry file pointing at it.
type env struct {
	t       *testing.T
	reg     *registry.Registry
	regPath string
	lake    string
	fleet   *fleet.Fleet
	vars    []string
}

// newEnv starts a fleet for the test's registry: shards.yaml with the page size (and,
// when given, the window length and safety lag) replaced and the lake in a temp dir.
func newEnv(t *testing.T, pageSize string, windowLag ...string) *env {
	t.Helper()
	b, err := os.ReadFile("../../shards.yaml")
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	lake := filepath.Join(dir, "lake")
	text := strings.Replace(string(b), "path: var/lake", "path: "+lake, 1)
	text = strings.Replace(text, "page_size: 10000", "page_size: "+pageSize, 1)
	if len(windowLag) == 2 {
		text = strings.Replace(text, "window: 1h", "window: "+windowLag[0], 1)
		text = strings.Replace(text, "safety_lag: 5m", "safety_lag: "+windowLag[1], 1)
	}
	regPath := filepath.Join(dir, "shards.yaml")
	if err := os.WriteFile(regPath, []byte(text), 0o644); err != nil {
		t.Fatal(err)
	}
	reg := fleettest.Load(t, regPath)
	f := fleettest.Start(t, reg)
	e := &env{t: t, reg: reg, regPath: regPath, lake: lake, fleet: f}
	e.vars = append(os.Environ(), "SHARDFLOW_REGISTRY="+regPath, "SHARDFLOW_ENV=local", "SHARDFLOW_TOKEN_KEY="+testKey)
	for _, s := range f.Shards {
		e.vars = append(e.vars, s.ExtractEnv+"="+s.ExtractDSN)
	}
	return e
}

func (e *env) admin(id string) *pgx.Conn {
	e.t.Helper()
	s, _ := e.fleet.Shard(id)
	return connect(e.t, s.AdminDSN)
}

func (e *env) extractConn(id string) *pgx.Conn {
	e.t.Helper()
	s, _ := e.fleet.Shard(id)
	return connect(e.t, s.ExtractDSN)
}

func connect(t *testing.T, dsn string) *pgx.Conn {
	t.Helper()
	c, err := pgx.Connect(context.Background(), dsn)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close(context.Background()) })
	return c
}

// extract runs the binary to completion and returns its exit code and output.
func (e *env) extract(args ...string) (int, string) {
	e.t.Helper()
	cmd := exec.Command(binary, args...)
	cmd.Env = e.vars
	out, err := cmd.CombinedOutput()
	var ee *exec.ExitError
	if errors.As(err, &ee) {
		return ee.ExitCode(), string(out)
	}
	if err != nil {
		e.t.Fatal(err)
	}
	return 0, string(out)
}

// extractKilled runs the binary with a failpoint and SIGKILLs it once the failpoint is
// reached, returning what it wrote to stderr.
func (e *env) extractKilled(failpoint string, args ...string) string {
	e.t.Helper()
	cmd := exec.Command(binary, args...)
	cmd.Env = append(e.vars, "SHARDFLOW_FAILPOINT="+failpoint)
	stderr, err := cmd.StderrPipe()
	if err != nil {
		e.t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		e.t.Fatal(err)
	}
	var lines []string
	sc := bufio.NewScanner(stderr)
	reached := false
	for sc.Scan() {
		lines = append(lines, sc.Text())
		if strings.Contains(sc.Text(), "failpoint "+failpoint+" reached") {
			reached = true
			break
		}
	}
	_ = cmd.Process.Kill() // SIGKILL: no deferred cleanup runs
	_ = cmd.Wait()
	if !reached {
		e.t.Fatalf("failpoint %s never reached:\n%s", failpoint, strings.Join(lines, "\n"))
	}
	return strings.Join(lines, "\n")
}

func (e *env) landed(table, shard string, w window.Window) (data, manifest bool) {
	key := landing.BatchKey(table, shard, w.Start, w.End)
	_, err1 := os.Stat(filepath.Join(e.lake, key))
	_, err2 := os.Stat(filepath.Join(e.lake, landing.ManifestKey(key)))
	return err1 == nil, err2 == nil
}

// warehouse opens a DuckDB warehouse (the warehouse package's backend) for the test.
func (e *env) warehouse() *duckdb.Warehouse {
	e.t.Helper()
	wh, err := duckdb.Open(context.Background(), filepath.Join(e.t.TempDir(), "wh.duckdb"))
	if err != nil {
		e.t.Fatal(err)
	}
	e.t.Cleanup(func() { wh.Close() })
	return wh
}

func (e *env) dqWarehouse(wh *duckdb.Warehouse) *dq.Warehouse {
	return &dq.Warehouse{DB: wh.DB(), Dialect: landing.DuckDB, Raw: "raw", Results: "dq.dq_results", Registry: e.reg, Checker: wh}
}

func windowAt(start string, size time.Duration) window.Window {
	t0, err := window.Parse(start)
	if err != nil {
		panic(err)
	}
	return window.Window{Start: t0, End: t0.Add(size)}
}

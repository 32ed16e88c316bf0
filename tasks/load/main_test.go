package main

import (
	"bufio"
	"bytes"
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/shopsphere/shardflow/internal/exitcode"
	"github.com/shopsphere/shardflow/internal/warehouse"
	"github.com/shopsphere/shardflow/internal/warehouse/duckdb"
	"github.com/shopsphere/shardflow/internal/warehouse/warehousetest"
)

type env struct {
	t    *testing.T
	dir  string
	lake string
	db   string
	reg  string
	bin  string
	want map[string]string // data key → "rows checksum"
}

var binPath string

func TestMain(m *testing.M) {
	dir, err := os.MkdirTemp("", "load-bin-")
	if err != nil {
		panic(err)
	}
	binPath = filepath.Join(dir, "load")
	out, err := exec.Command("go", "build", "-o", binPath, ".").CombinedOutput()
	if err != nil {
		fmt.Fprintf(os.Stderr, "build load: %v\n%s", err, out)
		os.Exit(1)
	}
	code := m.Run()
	os.RemoveAll(dir)
	os.Exit(code)
}

// newEnv writes a shards.yaml whose local environment points at a temp lake and warehouse,
// and lands 2 windows on each of 2 shards.
func newEnv(t *testing.T) *env {
	dir := t.TempDir()
	e := &env{t: t, dir: dir, lake: filepath.Join(dir, "lake"), db: filepath.Join(dir, "warehouse.duckdb"), bin: binPath, want: map[string]string{}}
	src, err := os.ReadFile("../../shards.yaml")
	if err != nil {
		t.Fatal(err)
	}
	y := strings.Replace(string(src), "path: var/lake", "path: "+e.lake, 1)
	y = strings.Replace(y, "path: var/warehouse.duckdb", "path: "+e.db, 1)
	e.reg = filepath.Join(dir, "shards.yaml")
	if err := os.WriteFile(e.reg, []byte(y), 0o644); err != nil {
		t.Fatal(err)
	}
	for _, sh := range []string{"s00", "s01"} {
		for i := 0; i < 2; i++ {
			t0 := warehousetest.T0.Add(time.Duration(i) * time.Hour)
			f, err := warehousetest.WriteBatch(e.lake, sh, t0, warehousetest.Rows(sh+fmt.Sprint(i), 30+i, t0))
			if err != nil {
				t.Fatal(err)
			}
			e.want[f.Manifest.DataKey] = fmt.Sprintf("%d %s", f.Manifest.Rows, f.Manifest.Checksum)
		}
	}
	return e
}

func (e *env) cmd(ctx context.Context, failpoint string, args ...string) *exec.Cmd {
	c := exec.CommandContext(ctx, e.bin, args...)
	c.Env = append(os.Environ(), "SHARDFLOW_REGISTRY="+e.reg, "SHARDFLOW_ENV=local")
	if failpoint != "" {
		c.Env = append(c.Env, "SHARDFLOW_FAILPOINT="+failpoint)
	}
	c.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	return c
}

func (e *env) run(args ...string) (int, string, string) {
	e.t.Helper()
	c := e.cmd(context.Background(), "", args...)
	var out, errb bytes.Buffer
	c.Stdout, c.Stderr = &out, &errb
	err := c.Run()
	code := 0
	if x, ok := err.(*exec.ExitError); ok {
		code = x.ExitCode()
	} else if err != nil {
		e.t.Fatal(err)
	}
	return code, out.String(), errb.String()
}

// killedAt runs load until it reports the failpoint, then SIGKILLs it.
func (e *env) killedAt(failpoint string, args ...string) {
	e.t.Helper()
	c := e.cmd(context.Background(), failpoint, args...)
	stderr, err := c.StderrPipe()
	if err != nil {
		e.t.Fatal(err)
	}
	if err := c.Start(); err != nil {
		e.t.Fatal(err)
	}
	reached := make(chan bool, 1)
	go func() {
		s := bufio.NewScanner(stderr)
		for s.Scan() {
			if strings.Contains(s.Text(), "failpoint "+failpoint+" reached") {
				reached <- true
				return
			}
		}
		reached <- false
	}()
	select {
	case ok := <-reached:
		if !ok {
			c.Wait()
			e.t.Fatalf("load ended before failpoint %s", failpoint)
		}
	case <-time.After(2 * time.Minute):
		c.Process.Kill()
		e.t.Fatalf("failpoint %s not reached", failpoint)
	}
	if err := c.Process.Signal(syscall.SIGKILL); err != nil {
		e.t.Fatal(err)
	}
	c.Wait()
}

// state opens the warehouse (as the next process would) and returns key → "rows
// checksum" of every loaded file, checking rows match history and nothing is orphaned.
func (e *env) state() map[string]string {
	e.t.Helper()
	ctx := context.Background()
	w, err := duckdb.Open(ctx, e.db)
	if err != nil {
		e.t.Fatal(err)
	}
	defer w.Close()
	h, err := w.History(ctx, warehouse.HistoryFilter{})
	if err != nil {
		if strings.Contains(err.Error(), "does not exist") {
			return map[string]string{}
		}
		e.t.Fatal(err)
	}
	out := map[string]string{}
	for _, x := range h {
		n, s, err := w.FileChecksum(ctx, warehousetest.Orders, x.FileKey)
		if err != nil {
			e.t.Fatal(err)
		}
		if n != x.Rows || s != x.Checksum {
			e.t.Fatalf("%s: %d rows checksum %s in raw.orders, history says %d %s", x.FileKey, n, s, x.Rows, x.Checksum)
		}
		out[x.FileKey] = fmt.Sprintf("%d %s", n, s)
	}
	var orphans int64
	w.DB().QueryRow("SELECT count(*) FROM raw.orders WHERE _file NOT IN (SELECT file_key FROM raw._load_history)").Scan(&orphans)
	if orphans != 0 {
		e.t.Fatalf("%d rows in raw.orders without a history entry", orphans)
	}
	return out
}

// TestKillAndRerun: the load process is SIGKILLed inside its transaction (after the
// insert, and after the history write, just before COMMIT); the warehouse keeps only
// whole, committed files; the re-run loads the rest; a third run skips everything.
func TestKillAndRerun(t *testing.T) {
	e := newEnv(t)
	e.killedAt("in-transaction:history", "--all")
	if st := e.state(); len(st) != 0 {
		t.Fatalf("after a kill before the first COMMIT: %v, want nothing", st)
	}
	// load one window, then die inside the second file's transaction
	if code, out, errs := e.run("--shard", "s00", "--table", "orders", "--window-start", "2026-03-10T10:00Z", "--window-end", "2026-03-10T11:00Z"); code != 0 {
		t.Fatalf("window load: exit %d\n%s%s", code, out, errs)
	}
	e.killedAt("in-transaction:inserted", "--all")
	if st := e.state(); len(st) != 1 {
		t.Fatalf("after a kill inside the second file: %v, want the one committed file", st)
	}
	code, out, errs := e.run("--all")
	if code != 0 {
		t.Fatalf("re-run: exit %d\n%s%s", code, out, errs)
	}
	for _, want := range []string{"shard s00: 2 files, 1 loaded (0 replaced), 1 skipped, 0 failed, 31 rows", "shard s01: 2 files, 2 loaded (0 replaced), 0 skipped, 0 failed, 61 rows"} {
		if !strings.Contains(out, want) {
			t.Fatalf("re-run summary:\n%s\nwant a line %q", out, want)
		}
	}
	for _, k := range []string{"shard=s00", "table=orders", "rows=", "duration="} {
		if !strings.Contains(errs, k) {
			t.Fatalf("log lacks %s:\n%s", k, errs)
		}
	}
	st := e.state()
	if len(st) != len(e.want) {
		t.Fatalf("after the re-run: %d files, want %d", len(st), len(e.want))
	}
	for k, v := range e.want {
		if st[k] != v {
			t.Fatalf("%s: %q, want %q", k, st[k], v)
		}
	}
	code, out, _ = e.run("--all")
	if code != 0 || !strings.Contains(out, "shard s00: 2 files, 0 loaded (0 replaced), 2 skipped") {
		t.Fatalf("third run: exit %d\n%s", code, out)
	}
}

func TestExitCodes(t *testing.T) {
	e := newEnv(t)
	for _, tc := range []struct {
		args []string
		code int
	}{
		{[]string{}, exitcode.Usage},
		{[]string{"--all", "--window-start", "2026-03-10T10:00Z"}, exitcode.Usage},
		{[]string{"--shard", "s00", "--table", "orders", "--window-start", "yesterday", "--window-end", "2026-03-10T11:00Z"}, exitcode.Usage},
		{[]string{"--all", "--table", "nope"}, exitcode.Usage},
		{[]string{"--all", "--source", "both"}, exitcode.Usage},
		{[]string{"--shard", "s00", "--table", "orders", "--since", "1h"}, exitcode.Usage},
		{[]string{"--all", "--source", "cdc", "--since", "48h"}, exitcode.OK},                                                                             // nothing of the fixture is that recent
		{[]string{"--shard", "s00", "--table", "orders", "--window-start", "2026-03-11T10:00Z", "--window-end", "2026-03-11T11:00Z"}, exitcode.Retryable}, // not landed
	} {
		if code, out, errs := e.run(tc.args...); code != tc.code {
			t.Fatalf("load %v: exit %d, want %d\n%s%s", tc.args, code, tc.code, out, errs)
		}
	}

	// another process holds the DuckDB file: retry later
	w, err := duckdb.Open(context.Background(), e.db)
	if err != nil {
		t.Fatal(err)
	}
	code, _, errs := e.run("--all")
	w.Close()
	if code != exitcode.Retryable {
		t.Fatalf("warehouse locked by another process: exit %d, want 75\n%s", code, errs)
	}

	// a data file that differs from its manifest: refused, the others load
	var victim string
	for k := range e.want {
		if strings.Contains(k, "shard=s01") {
			victim = k
			break
		}
	}
	p := filepath.Join(e.lake, filepath.FromSlash(victim))
	b, _ := os.ReadFile(p)
	b[len(b)/3] ^= 0x55
	os.WriteFile(p, b, 0o644)
	code, out, errs := e.run("--all")
	if code != exitcode.Permanent || !strings.Contains(errs, "sha256") {
		t.Fatalf("corrupt data file: exit %d, want 1\n%s%s", code, out, errs)
	}
	st := e.state()
	if _, ok := st[victim]; ok || len(st) != len(e.want)-1 {
		t.Fatalf("after refusing %s: %v", victim, st)
	}
}

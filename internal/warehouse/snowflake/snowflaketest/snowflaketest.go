// Package snowflaketest runs fakesnow's HTTP server (var/venv/fakesnow, `make
// deps-fakesnow`) as a Snowflake stand-in for gosnowflake in tests: Start it once per
// test binary (TestMain), Open a fresh database with a stage over a lake directory per
// test, Stop it at the end.
package snowflaketest

import (
	"context"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"sync/atomic"
	"testing"
	"time"

	"github.com/shopsphere/shardflow/internal/testenv"
	"github.com/shopsphere/shardflow/internal/warehouse/snowflake"
)

// Server is a running fakesnow server, or the reason it is not running.
type Server struct {
	Addr string
	Why  string // set when the server could not start
	proc *testenv.Process
	seq  atomic.Int64
}

// Start runs `fakesnow -s` on a free loopback port and waits until it accepts
// connections. It never fails: a server that cannot start records why in Why, and
// Open skips (or under CI fails) the tests that need it.
func Start() *Server {
	s := &Server{}
	root, err := testenv.FindRoot()
	if err != nil {
		s.Why = err.Error()
		return s
	}
	bin := filepath.Join(root, "var/venv/fakesnow/bin/fakesnow")
	if _, err := os.Stat(bin); err != nil {
		s.Why = bin + " is missing: run `make deps-fakesnow`"
		return s
	}
	ports, err := testenv.FreePorts(1)
	if err != nil {
		s.Why = err.Error()
		return s
	}
	port := ports[0]
	if s.proc, err = testenv.StartProcess("fakesnow", bin, []string{"-s", "--host", "127.0.0.1", "-p", fmt.Sprint(port)}, nil); err != nil {
		s.Why = err.Error()
		return s
	}
	addr := fmt.Sprintf("127.0.0.1:%d", port)
	for deadline := time.Now().Add(60 * time.Second); time.Now().Before(deadline); time.Sleep(200 * time.Millisecond) {
		if c, err := net.DialTimeout("tcp", addr, time.Second); err == nil {
			c.Close()
			s.Addr = addr
			return s
		}
	}
	s.Stop()
	s.Why = "fakesnow did not listen on " + addr + " within 60s"
	return s
}

// Stop kills the server. With FAKESNOW_KEEP_LOG set it keeps the server's log and prints
// its path.
func (s *Server) Stop() {
	s.proc.Stop()
	s.proc = nil
}

// Need skips the test (under CI: fails it) when the server is not running.
func (s *Server) Need(t testing.TB) {
	t.Helper()
	if s.Addr != "" {
		return
	}
	testenv.Missing(t, "fakesnow: "+s.Why)
}

// Open connects to a new database on the server with a stage <DB>.RAW.LANDING_STAGE whose
// URL is the lake directory (as production's stage is over the landing bucket), with
// the emulator switches fakesnow needs (docs/warehouse.md). FAKESNOW_PRODUCTION_SQL=1
// turns them off, to see what a newer fakesnow supports.
func (s *Server) Open(t testing.TB, lake string) *snowflake.Warehouse {
	t.Helper()
	s.Need(t)
	ctx := context.Background()
	db := fmt.Sprintf("T%d", s.seq.Add(1))
	dsn := fmt.Sprintf("fake:snow@%s/%s/RAW?account=fakesnow&protocol=http&disableTelemetry=true&maxRetryCount=1", s.Addr, db)
	cfg := snowflake.Config{Database: db, Schema: "RAW", Stage: db + ".RAW.LANDING_STAGE", StampAfterCopy: true, ClientChecksum: true}
	if os.Getenv("FAKESNOW_PRODUCTION_SQL") != "" {
		cfg.StampAfterCopy, cfg.ClientChecksum = false, false
	}
	w, err := snowflake.Open(ctx, dsn, cfg)
	if err != nil {
		t.Fatal(err)
	}
	for _, q := range []string{
		"CREATE DATABASE IF NOT EXISTS " + db,
		"CREATE SCHEMA IF NOT EXISTS " + db + ".RAW",
		"CREATE STAGE " + cfg.Stage + " URL = 'file://" + lake + "/'",
	} {
		if _, err := w.DB().ExecContext(ctx, q); err != nil {
			w.Close()
			t.Fatalf("%s: %v", q, err)
		}
	}
	return w
}

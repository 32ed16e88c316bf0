package snowflake_test

import (
	"bufio"
	"context"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/shopsphere/shardflow/internal/warehouse"
	"github.com/shopsphere/shardflow/internal/warehouse/snowflake"
	"github.com/shopsphere/shardflow/internal/warehouse/warehousetest"
)

// fakesnow is the address of the fakesnow server TestMain started, or why it did not.
var (
	fakesnowAddr string
	fakesnowWhy  string
	dbSeq        atomic.Int64
)

func repoRoot() string {
	dir, _ := os.Getwd()
	for d := dir; d != "/"; d = filepath.Dir(d) {
		if _, err := os.Stat(filepath.Join(d, "go.mod")); err == nil {
			return d
		}
	}
	return dir
}

func freePort() (int, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, err
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port, nil
}

// startFakesnow runs var/venv/fakesnow/bin/fakesnow -s on a free loopback port and waits
// until it accepts connections. The returned stop kills it.
func startFakesnow() (addr string, stop func(), err error) {
	bin := filepath.Join(repoRoot(), "var/venv/fakesnow/bin/fakesnow")
	if _, err := os.Stat(bin); err != nil {
		return "", nil, fmt.Errorf("%s is missing: run `make deps-fakesnow`", bin)
	}
	port, err := freePort()
	if err != nil {
		return "", nil, err
	}
	cmd := exec.Command(bin, "-s", "--host", "127.0.0.1", "-p", fmt.Sprint(port))
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGKILL}
	logf, err := os.CreateTemp("", "fakesnow-*.log")
	if err != nil {
		return "", nil, err
	}
	cmd.Stdout, cmd.Stderr = logf, logf
	if err := cmd.Start(); err != nil {
		return "", nil, err
	}
	stop = func() {
		syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL)
		cmd.Wait()
		logf.Close()
		if os.Getenv("FAKESNOW_KEEP_LOG") != "" {
			fmt.Fprintln(os.Stderr, "fakesnow log:", logf.Name())
		} else {
			os.Remove(logf.Name())
		}
	}
	addr = fmt.Sprintf("127.0.0.1:%d", port)
	deadline := time.Now().Add(60 * time.Second)
	for time.Now().Before(deadline) {
		if c, err := net.DialTimeout("tcp", addr, time.Second); err == nil {
			c.Close()
			return addr, stop, nil
		}
		time.Sleep(200 * time.Millisecond)
	}
	stop()
	return "", nil, fmt.Errorf("fakesnow did not listen on %s within 60s", addr)
}

func tail(path string) string {
	f, err := os.Open(path)
	if err != nil {
		return ""
	}
	defer f.Close()
	var lines []string
	s := bufio.NewScanner(f)
	for s.Scan() {
		lines = append(lines, s.Text())
	}
	if len(lines) > 20 {
		lines = lines[len(lines)-20:]
	}
	return strings.Join(lines, "\n")
}

func TestMain(m *testing.M) {
	addr, stop, err := startFakesnow()
	if err != nil {
		fakesnowWhy = err.Error()
	} else {
		fakesnowAddr = addr
	}
	code := m.Run()
	if stop != nil {
		stop()
	}
	os.Exit(code)
}

// needFakesnow skips (or, under CI, fails) when the fakesnow server is not there.
func needFakesnow(t *testing.T) {
	t.Helper()
	if fakesnowAddr != "" {
		return
	}
	if os.Getenv("CI") != "" {
		t.Fatalf("fakesnow: %s", fakesnowWhy)
	}
	t.Skipf("fakesnow: %s", fakesnowWhy)
}

// openFake connects to a new database on the fakesnow server, with a stage RAW.LANDING_STAGE
// whose URL is the lake directory (as production's is the landing bucket).
func openFake(t *testing.T, lake string) *snowflake.Warehouse {
	t.Helper()
	needFakesnow(t)
	ctx := context.Background()
	db := fmt.Sprintf("T%d", dbSeq.Add(1))
	dsn := fmt.Sprintf("fake:snow@%s/%s/RAW?account=fakesnow&protocol=http&disableTelemetry=true&maxRetryCount=1", fakesnowAddr, db)
	cfg := snowflake.Config{Database: db, Schema: "RAW", Stage: db + ".RAW.LANDING_STAGE", StampAfterCopy: true, ClientChecksum: true}
	if os.Getenv("FAKESNOW_PRODUCTION_SQL") != "" { // to see what fakesnow still lacks
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

func TestContractOnFakesnow(t *testing.T) {
	warehousetest.Run(t, func(t *testing.T, lake string) warehouse.Warehouse { return openFake(t, lake) })
}

package fleettest

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/shopsphere/shardflow/internal/fleet"
	"github.com/shopsphere/shardflow/internal/testenv"
)

// Standby is a hot standby of one shard of a test fleet: a physical streaming replica
// made with pg_basebackup -R, on its own free loopback port. The shard's roles and
// passwords are the primary's (replicated), so its DSNs are the primary's with the port
// changed.
type Standby struct {
	Port       int
	DataDir    string
	LogFile    string
	AdminDSN   string
	ExtractDSN string
}

// StartStandby makes a hot standby of shard id of f and starts it; it is stopped
// (immediate mode) when the test ends, before the fleet. hot_standby_feedback is on,
// so the primary keeps the rows a standby query still sees (no cancellation by a
// replay conflict during the test's reads; docs/decisions/0026 names the trade-off).
func StartStandby(t testing.TB, f *fleet.Fleet, id string) *Standby {
	t.Helper()
	sh, ok := f.Shard(id)
	if !ok {
		t.Fatalf("fleettest: standby of %s: not in the fleet", id)
	}
	bin, err := pgBinDir()
	if err != nil {
		t.Fatalf("fleettest: standby of %s: %v", id, err)
	}
	ports, err := testenv.FreePorts(1)
	if err != nil {
		t.Fatalf("fleettest: standby of %s: %v", id, err)
	}
	sb := &Standby{Port: ports[0], DataDir: filepath.Join(f.Dir, id+"-standby"), LogFile: filepath.Join(f.Dir, id+"-standby.log")}
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()

	// The admin password goes through the environment, not the command line.
	u, pw := dsnUserPassword(sh.AdminDSN)
	base := exec.CommandContext(ctx, "runuser", "-u", "postgres", "--", filepath.Join(bin, "pg_basebackup"),
		"-h", "127.0.0.1", "-p", strconv.Itoa(sh.Port), "-U", u, "-D", sb.DataDir, "-R", "-X", "stream", "-c", "fast")
	base.Dir = "/"
	base.Env = append(os.Environ(), "PGPASSWORD="+pw)
	if out, err := base.CombinedOutput(); err != nil {
		t.Fatalf("fleettest: pg_basebackup of %s: %v: %s", id, err, strings.TrimSpace(string(out)))
	}
	// postgresql.auto.conf is read last: it overrides the primary's port from shardflow.conf.
	conf := fmt.Sprintf("\n# fleettest standby\nport = %d\nhot_standby = on\nhot_standby_feedback = on\n", sb.Port)
	af, err := os.OpenFile(filepath.Join(sb.DataDir, "postgresql.auto.conf"), os.O_APPEND|os.O_WRONLY, 0)
	if err == nil {
		_, err = af.WriteString(conf)
		if cerr := af.Close(); err == nil {
			err = cerr
		}
	}
	if err != nil {
		t.Fatalf("fleettest: standby of %s: %v", id, err)
	}
	pgctl := func(args ...string) ([]byte, error) {
		c := exec.CommandContext(ctx, "runuser", append([]string{"-u", "postgres", "--", filepath.Join(bin, "pg_ctl")}, args...)...)
		c.Dir = "/"
		return c.CombinedOutput()
	}
	if out, err := pgctl("start", "-D", sb.DataDir, "-l", sb.LogFile, "-w", "-t", "60", "-s"); err != nil {
		log, _ := os.ReadFile(sb.LogFile)
		t.Fatalf("fleettest: start standby of %s on port %d: %v: %s\n%s", id, sb.Port, err, out, log)
	}
	t.Cleanup(func() { _, _ = pgctl("stop", "-D", sb.DataDir, "-m", "immediate", "-w", "-s") })
	old := ":" + strconv.Itoa(sh.Port) + "/"
	sb.AdminDSN = strings.Replace(sh.AdminDSN, old, ":"+strconv.Itoa(sb.Port)+"/", 1)
	sb.ExtractDSN = strings.Replace(sh.ExtractDSN, old, ":"+strconv.Itoa(sb.Port)+"/", 1)
	return sb
}

// pgBinDir is the bin directory of the highest PostgreSQL installed (as internal/fleet
// chooses it).
func pgBinDir() (string, error) {
	m, _ := filepath.Glob("/usr/lib/postgresql/*/bin/pg_basebackup")
	if len(m) == 0 {
		return "", fleet.ErrNoPostgres
	}
	v := func(p string) float64 {
		f, _ := strconv.ParseFloat(filepath.Base(filepath.Dir(filepath.Dir(p))), 64)
		return f
	}
	sort.Slice(m, func(i, j int) bool { return v(m[i]) > v(m[j]) })
	return filepath.Dir(m[0]), nil
}

// dsnUserPassword splits postgres://user:password@... into user and password.
func dsnUserPassword(dsn string) (string, string) {
	rest := strings.TrimPrefix(dsn, "postgres://")
	cred, _, _ := strings.Cut(rest, "@")
	u, p, _ := strings.Cut(cred, ":")
	return u, p
}

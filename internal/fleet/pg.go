package fleet

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"os/user"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"
)

// osUser runs every PostgreSQL program: initdb refuses root.
const osUser = "postgres"

// pgBin runs the PostgreSQL programs of one installation as the postgres user.
type pgBin struct{ dir string }

// findBinDir returns the bin directory of the highest PostgreSQL version installed.
func findBinDir() (string, error) {
	matches, _ := filepath.Glob("/usr/lib/postgresql/*/bin/pg_ctl")
	if len(matches) == 0 {
		return "", ErrNoPostgres
	}
	version := func(p string) float64 {
		v, _ := strconv.ParseFloat(filepath.Base(filepath.Dir(filepath.Dir(p))), 64)
		return v
	}
	sort.Slice(matches, func(i, j int) bool { return version(matches[i]) > version(matches[j]) })
	return filepath.Dir(matches[0]), nil
}

// run runs a PostgreSQL program as the postgres user, returning its combined output in
// the error.
func (p pgBin) run(ctx context.Context, prog string, args ...string) ([]byte, error) {
	full := append([]string{"-u", osUser, "--", filepath.Join(p.dir, prog)}, args...)
	cmd := exec.CommandContext(ctx, "runuser", full...)
	cmd.Dir = "/"
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	err := cmd.Run()
	if err != nil {
		return out.Bytes(), fmt.Errorf("%s: %w: %s", prog, err, strings.TrimSpace(out.String()))
	}
	return out.Bytes(), nil
}

// ensureTemplate creates the template data directory (initdb, the admin superuser with
// password, scram everywhere, loopback TCP only) unless it exists.
func (p pgBin) ensureTemplate(ctx context.Context, dir, adminPassword string) error {
	if _, err := os.Stat(filepath.Join(dir, "PG_VERSION")); err == nil {
		return nil
	}
	tmp := dir + ".partial"
	_ = os.RemoveAll(tmp)
	pwfile := dir + ".pw"
	if err := os.WriteFile(pwfile, []byte(adminPassword+"\n"), 0o600); err != nil {
		return fmt.Errorf("initdb: %w", err)
	}
	defer os.Remove(pwfile)
	if err := chownPostgres(pwfile); err != nil {
		return err
	}
	// --no-sync: the template is copied, and a crash during Up just redoes it.
	if _, err := p.run(ctx, "initdb", "-D", tmp, "-U", AdminUser, "--pwfile="+pwfile,
		"-A", "scram-sha-256", "-E", "UTF8", "--no-locale", "--no-sync", "--no-instructions"); err != nil {
		return fmt.Errorf("initdb: %w", err)
	}
	hba := `# written by internal/fleet: loopback TCP only, scram passwords
host all         all 127.0.0.1/32 scram-sha-256
host replication all 127.0.0.1/32 scram-sha-256
`
	if err := os.WriteFile(filepath.Join(tmp, "pg_hba.conf"), []byte(hba), 0o600); err != nil {
		return fmt.Errorf("initdb: %w", err)
	}
	conf, err := os.OpenFile(filepath.Join(tmp, "postgresql.conf"), os.O_APPEND|os.O_WRONLY, 0)
	if err != nil {
		return fmt.Errorf("initdb: %w", err)
	}
	_, err = conf.WriteString("\n# shardflow's settings for this shard (port, logical WAL, ...)\ninclude_if_exists = 'shardflow.conf'\n")
	if cerr := conf.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return fmt.Errorf("initdb: %w", err)
	}
	if err := chownPostgres(filepath.Join(tmp, "pg_hba.conf")); err != nil {
		return err
	}
	if err := os.Rename(tmp, dir); err != nil {
		return fmt.Errorf("initdb: %w", err)
	}
	return nil
}

// ensureData creates a shard's data directory as a copy of the template unless it
// exists.
func (p pgBin) ensureData(ctx context.Context, template, dataDir string) error {
	if _, err := os.Stat(filepath.Join(dataDir, "PG_VERSION")); err == nil {
		return nil
	}
	parent := filepath.Dir(dataDir)
	if err := os.MkdirAll(parent, 0o700); err != nil {
		return err
	}
	if err := chownPostgres(parent); err != nil {
		return err
	}
	tmp := dataDir + ".partial"
	_ = os.RemoveAll(tmp)
	cmd := exec.CommandContext(ctx, "runuser", "-u", osUser, "--", "cp", "-a", template, tmp)
	if out, err := cmd.CombinedOutput(); err != nil {
		return fmt.Errorf("copy template: %w: %s", err, strings.TrimSpace(string(out)))
	}
	return os.Rename(tmp, dataDir)
}

// start starts the cluster unless it is running and waits until it accepts connections.
func (p pgBin) start(ctx context.Context, dataDir, logFile string) error {
	if ok, err := p.running(ctx, dataDir); err != nil || ok {
		return err
	}
	if _, err := p.run(ctx, "pg_ctl", "start", "-D", dataDir, "-l", logFile, "-w", "-t", "60", "-s"); err != nil {
		return fmt.Errorf("%w\n%s", err, tail(logFile, 8))
	}
	return nil
}

// stop stops the cluster (fast mode) unless it is stopped.
func (p pgBin) stop(ctx context.Context, dataDir string) error {
	if ok, err := p.running(ctx, dataDir); err != nil || !ok {
		return err
	}
	if _, err := p.run(ctx, "pg_ctl", "stop", "-D", dataDir, "-m", "fast", "-w", "-t", "60", "-s"); err != nil {
		return err
	}
	return nil
}

// running asks pg_ctl status: exit 0 running, 3 not running, 4 no data directory.
func (p pgBin) running(ctx context.Context, dataDir string) (bool, error) {
	cmd := exec.CommandContext(ctx, "runuser", "-u", osUser, "--", filepath.Join(p.dir, "pg_ctl"), "status", "-D", dataDir)
	cmd.Dir = "/"
	out, err := cmd.CombinedOutput()
	var ee *exec.ExitError
	switch {
	case err == nil:
		return true, nil
	case errors.As(err, &ee) && (ee.ExitCode() == 3 || ee.ExitCode() == 4):
		return false, nil
	default:
		return false, fmt.Errorf("pg_ctl status: %w: %s", err, strings.TrimSpace(string(out)))
	}
}

// applySchema creates the database shop if missing, applies Schema and gives the
// roles LOGIN and the fleet's passwords.
func applySchema(ctx context.Context, s Shard, sec Secrets) error {
	admin := strings.Replace(s.AdminDSN, "/"+Database+"?", "/postgres?", 1)
	c, err := connectRetry(ctx, admin)
	if err != nil {
		return err
	}
	var exists bool
	err = c.QueryRow(ctx, "SELECT EXISTS (SELECT FROM pg_database WHERE datname = $1)", Database).Scan(&exists)
	if err == nil && !exists {
		_, err = c.Exec(ctx, "CREATE DATABASE "+Database)
	}
	c.Close(ctx)
	if err != nil {
		return fmt.Errorf("create database: %w", err)
	}
	c, err = connectRetry(ctx, s.AdminDSN)
	if err != nil {
		return err
	}
	defer c.Close(ctx)
	tx, err := c.Begin(ctx)
	if err != nil {
		return err
	}
	defer tx.Rollback(ctx) //nolint:errcheck // after Commit it is a no-op
	// Serialize concurrent Ups on the same cluster (GRANT and CREATE OR REPLACE race).
	if _, err := tx.Exec(ctx, "SELECT pg_advisory_xact_lock(4242)"); err != nil {
		return err
	}
	if _, err := tx.Exec(ctx, Schema); err != nil {
		return err
	}
	// Passwords are hex (randomSecret), so quoting them as literals is safe.
	for _, q := range []string{
		fmt.Sprintf("ALTER ROLE %s LOGIN PASSWORD '%s'", ExtractUser, sec.Extract),
		fmt.Sprintf("ALTER ROLE %s LOGIN PASSWORD '%s'", ReplicationUser, sec.Replication),
	} {
		if _, err := tx.Exec(ctx, q); err != nil {
			return errors.New("set role password: " + redact(err.Error(), sec))
		}
	}
	return tx.Commit(ctx)
}

// connectRetry connects, retrying briefly while a just-started server finishes
// recovery.
func connectRetry(ctx context.Context, dsn string) (*pgx.Conn, error) {
	var err error
	for i := 0; i < 50; i++ {
		var c *pgx.Conn
		if c, err = pgx.Connect(ctx, dsn); err == nil {
			return c, nil
		}
		select {
		case <-ctx.Done():
			return nil, ctx.Err()
		case <-time.After(100 * time.Millisecond):
		}
	}
	return nil, fmt.Errorf("connect: %w", err)
}

// preparePostgresDir creates dir owned by postgres (0700) and checks that the postgres
// user can reach it.
func preparePostgresDir(dir string) error {
	// Parents the postgres user must traverse: 0755, like `mkdir -p` (a fresh checkout
	// has no var/ yet). The fleet's own directory is postgres's alone.
	if err := os.MkdirAll(filepath.Dir(dir), 0o755); err != nil {
		return err
	}
	if err := os.Mkdir(dir, 0o700); err != nil && !errors.Is(err, os.ErrExist) {
		return err
	}
	if err := chownPostgres(dir); err != nil {
		return err
	}
	cmd := exec.Command("runuser", "-u", osUser, "--", "test", "-w", dir)
	if err := cmd.Run(); err != nil {
		return fmt.Errorf("the postgres user cannot write %s: every parent directory must be traversable (o+x) by it", dir)
	}
	return nil
}

func chownPostgres(path string) error {
	u, err := user.Lookup(osUser)
	if err != nil {
		return fmt.Errorf("look up the %s user (is PostgreSQL installed? `make deps-apt`): %w", osUser, err)
	}
	uid, _ := strconv.Atoi(u.Uid)
	gid, _ := strconv.Atoi(u.Gid)
	if err := os.Chown(path, uid, gid); err != nil {
		return fmt.Errorf("chown %s to %s: %w", path, osUser, err)
	}
	return nil
}

func randomSecret() string {
	b := make([]byte, 18)
	if _, err := rand.Read(b); err != nil {
		panic(err) // crypto/rand never fails on Linux
	}
	return hex.EncodeToString(b)
}

func redact(s string, sec Secrets) string {
	for _, pw := range []string{sec.Admin, sec.Extract, sec.Replication} {
		if pw != "" {
			s = strings.ReplaceAll(s, pw, "***")
		}
	}
	return s
}

// tail returns the last n lines of a log file, for errors about a server that did not
// start.
func tail(path string, n int) string {
	b, err := os.ReadFile(path)
	if err != nil {
		return ""
	}
	lines := strings.Split(strings.TrimRight(string(b), "\n"), "\n")
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	return "log " + path + ":\n  " + strings.Join(lines, "\n  ")
}

// Package fleettest starts a real local shard fleet for a test: one PostgreSQL cluster
// per shard of a registry, on free loopback ports, in a fresh directory, with the OLTP
// schema applied. The fleet is stopped and its directory removed when the test ends.
//
// Tests in different packages run in parallel (go test ./...), so Start never uses a
// fixed port or a shared directory. Durability is off (fsync, full_page_writes,
// synchronous_commit): these clusters are disposable.
package fleettest

import (
	"context"
	"errors"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/shopsphere/shardflow/internal/fleet"
	"github.com/shopsphere/shardflow/internal/registry"
	"github.com/shopsphere/shardflow/internal/testenv"
)

// Start brings up one cluster per shard of reg and registers the cleanup. It fails the
// test (it does not skip) when PostgreSQL is missing: `make deps-apt` installs it.
func Start(t testing.TB, reg *registry.Registry) *fleet.Fleet {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	reapOnce.Do(func() { reapStale(ctx) })
	var lastErr error
	for attempt := 0; attempt < 3; attempt++ {
		// t.TempDir lives under a root-only 0700 parent the postgres user cannot
		// traverse, so use a directory of our own under the temp root.
		dir, err := os.MkdirTemp("", "shardflow-fleet-")
		if err != nil {
			t.Fatalf("fleettest: %v", err)
		}
		if err := os.Chmod(dir, 0o755); err != nil {
			t.Fatalf("fleettest: %v", err)
		}
		if err := os.WriteFile(filepath.Join(dir, ownerFile), []byte(strconv.Itoa(os.Getpid())), 0o644); err != nil {
			t.Fatalf("fleettest: %v", err)
		}
		ports, err := testenv.FreePorts(len(reg.Shards))
		if err != nil {
			t.Fatalf("fleettest: %v", err)
		}
		pm := map[string]int{}
		for i, s := range reg.Shards {
			pm[s.ID] = ports[i]
		}
		f, err := fleet.Up(ctx, fleet.Config{Dir: filepath.Join(dir, "fleet"), Ports: pm, Registry: reg, Fast: true})
		if err == nil {
			t.Cleanup(func() {
				cctx, ccancel := context.WithTimeout(context.Background(), time.Minute)
				defer ccancel()
				if err := f.Stop(cctx); err != nil {
					t.Errorf("fleettest: %v", err)
				}
				_ = os.RemoveAll(dir)
			})
			return f
		}
		lastErr = err
		if f != nil {
			_ = f.Stop(ctx)
		}
		_ = os.RemoveAll(dir)
		if errors.Is(err, fleet.ErrNoPostgres) || !portClash(err) {
			break
		}
		// Another test process took one of our ports between the probe and the start.
	}
	t.Fatalf("fleettest: %v", lastErr)
	return nil
}

// Grow brings up the shards reg adds to a running fleet f (a split's new shard), on
// free ports, keeping every existing cluster, port and password, and returns the grown
// fleet. Its cleanup stops the new clusters too.
func Grow(t testing.TB, f *fleet.Fleet, reg *registry.Registry) *fleet.Fleet {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	ports := f.Ports()
	var added []string
	for _, s := range reg.Shards {
		if _, ok := ports[s.ID]; !ok {
			added = append(added, s.ID)
		}
	}
	free, err := testenv.FreePorts(len(added))
	if err != nil {
		t.Fatalf("fleettest: %v", err)
	}
	for i, id := range added {
		ports[id] = free[i]
	}
	g, err := fleet.Up(ctx, fleet.Config{Dir: f.Dir, Ports: ports, Registry: reg, Fast: true})
	if err != nil {
		t.Fatalf("fleettest: grow: %v", err)
	}
	t.Cleanup(func() {
		cctx, ccancel := context.WithTimeout(context.Background(), time.Minute)
		defer ccancel()
		_ = g.Stop(cctx)
	})
	return g
}

// Registry parses registry text for a test, failing the test on a problem.
func Registry(t testing.TB, yamlText string) *registry.Registry {
	t.Helper()
	r, err := registry.Check(strings.NewReader(yamlText))
	if err != nil {
		t.Fatalf("fleettest: registry: %v", err)
	}
	return r
}

// Load reads a registry file for a test (e.g. "../../shards.yaml").
func Load(t testing.TB, path string) *registry.Registry {
	t.Helper()
	r, err := registry.Load(path)
	if err != nil {
		t.Fatalf("fleettest: %v", err)
	}
	return r
}

// ownerFile holds the pid of the test process that owns a fleet directory.
const ownerFile = "owner.pid"

var reapOnce sync.Once

// reapStale stops and deletes the fleets of test processes that died without running
// their cleanups (a test binary killed by -timeout or a signal).
func reapStale(ctx context.Context) {
	dirs, _ := filepath.Glob(filepath.Join(os.TempDir(), "shardflow-fleet-*"))
	for _, dir := range dirs {
		b, err := os.ReadFile(filepath.Join(dir, ownerFile))
		if err != nil {
			continue
		}
		pid, err := strconv.Atoi(strings.TrimSpace(string(b)))
		if err != nil || pid <= 0 || syscall.Kill(pid, 0) != syscall.ESRCH {
			continue // alive, or not ours to judge
		}
		_ = fleet.Down(ctx, filepath.Join(dir, "fleet"), true)
		_ = os.RemoveAll(dir)
	}
}

func portClash(err error) bool {
	s := err.Error()
	return strings.Contains(s, "Address already in use") || strings.Contains(s, "could not bind") || strings.Contains(s, "could not create any TCP/IP sockets")
}

// PortsFree reports whether the n ports from base on are free on loopback now.
func PortsFree(base, n int) bool {
	for p := base; p < base+n; p++ {
		l, err := net.Listen("tcp", fmt.Sprintf("127.0.0.1:%d", p))
		if err != nil {
			return false
		}
		l.Close()
	}
	return true
}

package shardctl

import (
	"bytes"
	"context"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"

	"github.com/shopsphere/shardflow/internal/exitcode"
	"github.com/shopsphere/shardflow/internal/fleet/fleettest"
)

func runCmd(t *testing.T, env Env, args ...string) (string, error) {
	t.Helper()
	var out, errb bytes.Buffer
	env.Stdout, env.Stderr = &out, &errb
	err := Run(context.Background(), env, args)
	return out.String() + errb.String(), err
}

// fleet up → traffic → status → down --purge, through the CLI, on a 2-shard registry
// that `fleet up --shards 2` generates.
func TestFleetCommands(t *testing.T) {
	root, err := os.MkdirTemp("", "shardflow-shardctl-")
	if err != nil {
		t.Fatal(err)
	}
	if err := os.Chmod(root, 0o755); err != nil {
		t.Fatal(err)
	}
	dir := filepath.Join(root, "fleet")
	t.Cleanup(func() {
		_, _ = runCmd(t, Env{Registry: "../../shards.yaml"}, "fleet", "down", "--purge", "--dir", dir)
		os.RemoveAll(root)
	})
	env := Env{Registry: "../../shards.yaml", Vars: map[string]string{}}
	// a port found free can be taken by another test process before the cluster binds
	// it: try again on other ports, as fleettest.Start does
	var base int
	var out string
	for attempt, p := 0, 43000+os.Getpid()%1000*7; ; attempt, p = attempt+1, p+101 {
		for ; p < 64000 && !fleettest.PortsFree(p, 2); p += 101 {
		}
		base = p
		out, err = runCmd(t, env, "fleet", "up", "--shards", "2", "--dir", dir, "--base-port", itoa(base))
		if err == nil {
			break
		}
		if attempt == 2 || !strings.Contains(out+err.Error(), "Address already in use") {
			t.Fatalf("fleet up: %v\n%s", err, out)
		}
		_, _ = runCmd(t, env, "fleet", "down", "--purge", "--dir", dir)
	}
	reg := filepath.Join(root, "shards-2.yaml")
	if !strings.Contains(out, "wrote "+reg) || !strings.Contains(out, "s01    127.0.0.1:"+itoa(base+1)) {
		t.Errorf("fleet up output:\n%s", out)
	}
	env.Registry = reg
	out, err = runCmd(t, env, "traffic", "--orders", "150", "--seed", "3", "--dir", dir)
	if err != nil {
		t.Fatalf("traffic: %v\n%s", err, out)
	}
	if !regexp.MustCompile(`total\s+150/\d+`).MatchString(out) {
		t.Errorf("traffic output:\n%s", out)
	}
	if regexp.MustCompile(`\b\d{15,16}\b`).MatchString(out) {
		t.Errorf("traffic printed something like a card number:\n%s", out)
	}
	out, err = runCmd(t, env, "fleet", "status", "--dir", dir)
	if err != nil {
		t.Fatalf("status: %v\n%s", err, out)
	}
	orders := regexp.MustCompile(`(?m)^s0[01]\s+\d+\s+running\s+(\d+)`).FindAllStringSubmatch(out, -1)
	if len(orders) != 2 || atoi(orders[0][1])+atoi(orders[1][1]) != 150 {
		t.Errorf("status does not show 150 orders on 2 running shards:\n%s", out)
	}
	out, err = runCmd(t, env, "fleet", "env", "--dir", dir)
	if err != nil || !strings.Contains(out, "export SHARDFLOW_S01_REPLICATION_DSN='postgres://shardflow_replication:") {
		t.Errorf("fleet env: %v", err)
	}
	if _, err = runCmd(t, env, "fleet", "down", "--dir", dir); err != nil {
		t.Fatal(err)
	}
	if _, err = runCmd(t, env, "fleet", "status", "--dir", dir); exitcode.Of(err) != exitcode.Retryable {
		t.Errorf("status of a stopped fleet: exit %d, want %d", exitcode.Of(err), exitcode.Retryable)
	}
	if _, err = runCmd(t, env, "fleet", "bogus"); exitcode.Of(err) != exitcode.Usage {
		t.Errorf("fleet bogus: exit %d", exitcode.Of(err))
	}
	if _, err = runCmd(t, env, "traffic", "--orders", "5", "--duration", "1s"); exitcode.Of(err) != exitcode.Usage {
		t.Errorf("traffic with both --orders and --duration: exit %d", exitcode.Of(err))
	}
}

func itoa(n int) string { return strconv.Itoa(n) }
func atoi(s string) int { n, _ := strconv.Atoi(s); return n }

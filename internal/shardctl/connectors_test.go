package shardctl

import (
	"context"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/shopsphere/shardflow/internal/cdc/cdctest"
	"github.com/shopsphere/shardflow/internal/connector"
	"github.com/shopsphere/shardflow/internal/exitcode"
	"github.com/shopsphere/shardflow/internal/fleet/fleettest"
	"github.com/shopsphere/shardflow/internal/registry"
)

// TestConnectorsCommands drives `shardctl connectors` on a real Connect worker and two
// real shards: secrets from the replication DSNs; plan changes nothing; apply creates
// both and waits until they run; a second apply changes nothing and plan says
// unchanged; status is healthy, then exits 3 naming the shard whose change nobody
// consumed within --sla; render --check catches a drifted file.
func TestConnectorsCommands(t *testing.T) {
	root := cdctest.Require(t)
	base, err := os.ReadFile(filepath.Join(root, "shards.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	text, err := registry.Generate(base, 2, 0)
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	regFile := filepath.Join(dir, "shards.yaml")
	if err := os.WriteFile(regFile, text, 0o644); err != nil {
		t.Fatal(err)
	}
	reg := fleettest.Load(t, regFile)
	fl := fleettest.Start(t, reg)
	stack := cdctest.Start(t)
	vars := map[string]string{}
	for _, s := range fl.Shards {
		vars[s.ReplicationEnv] = s.ReplicationDSN
	}
	env := Env{Registry: regFile, Name: "local", Vars: vars}
	remote := []string{"--connect-url", stack.ConnectURL}

	// without the tokenizer key variable: a usage error naming it
	if _, err := runCmd(t, env, "connectors", "secrets", "--dir", filepath.Join(stack.WorkerDir(), connector.SecretsDir)); exitcode.Of(err) != exitcode.Usage ||
		!strings.Contains(err.Error(), reg.Tokenizer.Key.Env) {
		t.Fatalf("connectors secrets without the key: %v, want exit 2 naming %s", err, reg.Tokenizer.Key.Env)
	}
	const key = "connectors-test-tokenizer-key-0123456789ab"
	vars[reg.Tokenizer.Key.Env] = key
	out, err := runCmd(t, env, "connectors", "secrets", "--dir", filepath.Join(stack.WorkerDir(), connector.SecretsDir))
	if err != nil || !strings.Contains(out, "2 shard connection files") || !strings.Contains(out, "the tokenizer key of key id "+reg.Tokenizer.KeyID) {
		t.Fatalf("connectors secrets: %v\n%s", err, out)
	}
	// beside the secrets directory, where the worker resolves ${dir:tokenizer:<file>}
	keyFile := filepath.Join(stack.WorkerDir(), connector.TokenizerDir, connector.TokenizerKeyFile(reg.Tokenizer))
	if b, err := os.ReadFile(keyFile); err != nil || string(b) != key || strings.Contains(out, key) {
		t.Fatalf("tokenizer key file %s: %v (the key must be written as is, and never printed)", keyFile, err)
	}
	if fi, _ := os.Stat(keyFile); fi.Mode().Perm() != 0o600 {
		t.Fatalf("tokenizer key file mode %v, want 0600", fi.Mode().Perm())
	}
	for _, s := range fl.Shards {
		fi, err := os.Stat(filepath.Join(stack.WorkerDir(), connector.SecretsDir, s.ID+".properties"))
		if err != nil || fi.Mode().Perm() != 0o600 {
			t.Fatalf("secrets file of %s: %v %v, want mode 0600", s.ID, fi, err)
		}
		u, _ := url.Parse(s.ReplicationDSN)
		if pw, _ := u.User.Password(); strings.Contains(out, pw) {
			t.Fatal("connectors secrets printed a password")
		}
	}

	out, err = runCmd(t, env, append([]string{"connectors", "plan"}, remote...)...)
	if err != nil || !strings.Contains(out, "shardflow-s00: create") || !strings.Contains(out, "plan: 2 to create, 0 to update, 0 unchanged") {
		t.Fatalf("first plan: %v\n%s", err, out)
	}
	names, err := connector.NewClient(stack.ConnectURL, nil).Connectors(context.Background())
	if err != nil || len(names) != 0 {
		t.Fatalf("after plan the worker has connectors %v (%v), want none", names, err)
	}
	out, err = runCmd(t, env, append([]string{"connectors", "apply"}, remote...)...)
	if err != nil || !strings.Contains(out, "apply: 2 to create") || strings.Count(out, "RUNNING, tasks 0:RUNNING") != 2 {
		t.Fatalf("apply: %v\n%s", err, out)
	}
	out, err = runCmd(t, env, append([]string{"connectors", "apply"}, remote...)...)
	if err != nil || !strings.Contains(out, "apply: nothing to change") {
		t.Fatalf("second apply: %v\n%s", err, out)
	}
	out, err = runCmd(t, env, append([]string{"connectors", "plan"}, remote...)...)
	if err != nil || strings.Count(out, ": unchanged") != 2 {
		t.Fatalf("plan after apply: %v\n%s", err, out)
	}

	status := append([]string{"connectors", "status", "--brokers", strings.Join(stack.Brokers, ",")}, remote...)
	out, err = runCmd(t, env, status...)
	if err != nil || strings.Count(out, "  ok\n") != 2 || !strings.Contains(out, "active/") {
		t.Fatalf("status of two idle running shards: %v\n%s", err, out)
	}

	// A change on s01 that nobody consumes, with a 1s SLA: s01 is named.
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	conn, err := pgx.Connect(ctx, fl.Shards[1].AdminDSN)
	if err != nil {
		t.Fatal(err)
	}
	_, err = conn.Exec(ctx, `INSERT INTO orders (order_id, customer_id, bucket, status, currency, region, total_cents)
		VALUES ('01890000-0000-7000-8000-0000000000aa', 42, 7, 'placed', 'EUR', 'eu', 100)`)
	conn.Close(ctx)
	if err != nil {
		t.Fatal(err)
	}
	waitRecord(t, ctx, stack.Brokers, connector.Topic("shardflow", "s01", "orders"))
	// the change ages past the 1s SLA: status turns unhealthy and names s01
	for {
		out, err = runCmd(t, env, append(status, "--sla", "1s")...)
		if exitcode.Of(err) == exitcode.CheckFail && strings.Contains(err.Error(), "shard s01") && strings.Contains(out, "tokenize cdc is behind") {
			break
		}
		if ctx.Err() != nil {
			t.Fatalf("status with a change older than the SLA: exit %d %v\n%s", exitcode.Of(err), err, out)
		}
		time.Sleep(500 * time.Millisecond)
	}

	// render into a directory, check it, drift one file.
	cfgDir := filepath.Join(dir, "connectors")
	if out, err := runCmd(t, env, "connectors", "render", "--dir", cfgDir); err != nil || !strings.Contains(out, "2 connector configs") {
		t.Fatalf("render: %v\n%s", err, out)
	}
	if out, err := runCmd(t, env, "connectors", "render", "--dir", cfgDir, "--check"); err != nil {
		t.Fatalf("render --check of a fresh render: %v\n%s", err, out)
	}
	if err := os.WriteFile(filepath.Join(cfgDir, "s01.json"), []byte("{}\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	if _, err := runCmd(t, env, "connectors", "render", "--dir", cfgDir, "--check"); exitcode.Of(err) != exitcode.CheckFail || !strings.Contains(err.Error(), "s01.json") {
		t.Fatalf("render --check of a drifted file: exit %d %v", exitcode.Of(err), err)
	}

	if out, err := runCmd(t, env, append([]string{"connectors", "restart", "--shard", "s00"}, remote...)...); err != nil {
		t.Fatalf("restart: %v\n%s", err, out)
	}
	for _, args := range [][]string{{"connectors"}, {"connectors", "bogus"}, {"connectors", "restart"}, {"connectors", "secrets"}} {
		if _, err := runCmd(t, env, append(args, remote...)...); exitcode.Of(err) != exitcode.Usage {
			t.Errorf("%v: exit %d (%v), want 2", args, exitcode.Of(err), err)
		}
	}
}

func waitRecord(t *testing.T, ctx context.Context, brokers []string, topic string) {
	t.Helper()
	cl, err := kgo.NewClient(kgo.SeedBrokers(brokers...))
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	adm := kadm.NewClient(cl)
	for {
		ends, err := adm.ListEndOffsets(ctx, topic)
		if err == nil {
			if o, ok := ends.Lookup(topic, 0); ok && o.Err == nil && o.Offset > 0 {
				return
			}
		}
		if ctx.Err() != nil {
			t.Fatalf("no record on %s: %v", topic, err)
		}
		time.Sleep(200 * time.Millisecond)
	}
}

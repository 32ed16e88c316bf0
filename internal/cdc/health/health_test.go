package health_test

import (
	"bytes"
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
	"github.com/shopsphere/shardflow/internal/cdc/health"
	"github.com/shopsphere/shardflow/internal/connector"
	"github.com/shopsphere/shardflow/internal/exitcode"
	"github.com/shopsphere/shardflow/internal/fleet/fleettest"
	"github.com/shopsphere/shardflow/internal/registry"
)

const group = "health-test"

// TestCheckOnRealStack walks two shards through what status must tell apart, on real
// shards, Kafka and a Connect worker with Debezium: no connectors yet (unhealthy:
// missing); s01 without its publication (its task FAILED, its slot never created)
// while s00 streams changes nobody consumes (older than the SLA: behind); then the
// group commits, s01's publication is back and its connector restarted: healthy, with
// active slots, heartbeats and no lag. Slots and heartbeats are read through the
// replication DSN only.
func TestCheckOnRealStack(t *testing.T) {
	root := cdctest.Require(t)
	base, err := os.ReadFile(filepath.Join(root, "shards.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	text, err := registry.Generate(base, 2, 0)
	if err != nil {
		t.Fatal(err)
	}
	reg := fleettest.Registry(t, string(text))
	fl := fleettest.Start(t, reg)
	stack := cdctest.Start(t)
	ctx, cancel := context.WithTimeout(context.Background(), 6*time.Minute)
	defer cancel()

	dsns := map[string]string{}
	for _, s := range fl.Shards {
		dsns[s.ID] = s.ReplicationDSN
	}
	stack.WriteSecrets(t, reg.Tokenizer, dsns, "health-test-tokenizer-key-0123456789abcdef")
	client := connector.NewClient(stack.ConnectURL, nil)
	chk := &health.Checker{Registry: reg, Connect: client, Brokers: stack.Brokers, TopicPrefix: "shardflow", Group: group, DSNs: dsns}

	// 1. Nothing applied yet.
	rep := chk.Check(ctx)
	if got := problems(rep); !strings.Contains(got["s00"], "no connector") || !strings.Contains(got["s01"], "no connector") {
		t.Fatalf("before apply: problems %v, want both shards without connector", got)
	}
	wantErr(t, rep, exitcode.CheckFail, "shard s00", "shard s01")
	for _, s := range rep.Shards {
		if len(s.Unknown) > 0 || s.Slot.Exists {
			t.Errorf("before apply, %s: unknown %v, slot %+v (want read, no slot)", s.Shard, s.Unknown, s.Slot)
		}
	}

	// 2. s01 loses its publication; s00 streams a change nobody consumes.
	exec(t, ctx, fl.Shards[1].AdminDSN, `DROP PUBLICATION shardflow_cdc`)
	desired, err := connector.RenderAll(reg, "shardflow")
	if err != nil {
		t.Fatal(err)
	}
	plan, err := connector.Plan(ctx, client, desired)
	if err != nil {
		t.Fatal(err)
	}
	if err := connector.Apply(ctx, client, plan); err != nil {
		t.Fatal(err)
	}
	waitStatus(t, ctx, stack, client, "s00", func(st connector.Status) bool { return st.Running() })
	waitStatus(t, ctx, stack, client, "s01", func(st connector.Status) bool {
		return len(st.Tasks) > 0 && st.Tasks[0].State.State == "FAILED"
	})
	exec(t, ctx, fl.Shards[0].AdminDSN, `INSERT INTO orders (order_id, customer_id, bucket, status, currency, region, total_cents, refunded_cents, deleted, created_at)
		VALUES ('01890000-0000-7000-8000-000000000001', 42, 7, 'placed', 'EUR', 'eu', 1999, 0, false, now())`)
	chk.SLA = time.Second
	var s00 health.Shard
	for deadline := time.Now().Add(2 * time.Minute); ; {
		rep = chk.Check(ctx)
		s00 = shard(rep, "s00")
		if s00.Lag > 0 && s00.Oldest > time.Second {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("s00 never showed a pending change older than 1s: %+v\n%s", s00, tail(stack.ConnectLog(), 30))
		}
		time.Sleep(time.Second)
	}
	got := problems(rep)
	if !strings.Contains(got["s00"], "tokenize cdc is behind") {
		t.Errorf("s00 problems %q, want the consumer behind", got["s00"])
	}
	if !strings.Contains(got["s01"], "task 0 FAILED") || !strings.Contains(got["s01"], "slot shardflow_s01 missing") {
		t.Errorf("s01 problems %q, want its task FAILED and its slot missing", got["s01"])
	}
	if !s00.Slot.Exists || s00.Slot.RetainedBytes <= 0 || s00.Slot.FlushLagBytes < 0 {
		t.Errorf("s00 slot %+v, want it read with the WAL it retains", s00.Slot)
	}
	err = wantErr(t, rep, exitcode.CheckFail, "shard s00", "shard s01")
	var out bytes.Buffer
	rep.Write(&out)
	for _, dsn := range dsns {
		u, _ := url.Parse(dsn)
		if pw, _ := u.User.Password(); pw != "" && (strings.Contains(out.String(), pw) || strings.Contains(err.Error(), pw)) {
			t.Fatal("the status output or error holds a shard's password")
		}
	}
	t.Logf("unhealthy:\n%s", out.String())

	// 3. The group catches up, s01 gets its publication back and its task restarted.
	commitEnds(t, ctx, stack.Brokers)
	exec(t, ctx, fl.Shards[1].AdminDSN, `CREATE PUBLICATION shardflow_cdc FOR TABLE orders, order_items, payments, shardflow_heartbeat, shardflow_signal`)
	if err := client.Restart(ctx, connector.Name("s01")); err != nil {
		t.Fatal(err)
	}
	waitStatus(t, ctx, stack, client, "s01", func(st connector.Status) bool { return st.Running() })
	chk.SLA = 0 // sla.cdc_freshness
	// healthy once every shard streams again: a restarted task takes a moment to
	// reattach to its slot (inactive until then)
	streaming := func(rep *health.Report) bool {
		for _, s := range rep.Shards {
			if s.Connector != "RUNNING" || !s.Slot.Active || s.Lag != 0 || s.Heartbeat < 0 {
				return false
			}
		}
		return true
	}
	for deadline := time.Now().Add(2 * time.Minute); ; {
		rep = chk.Check(ctx)
		if rep.Err() == nil && streaming(rep) {
			break
		}
		if time.Now().After(deadline) {
			out.Reset()
			rep.Write(&out)
			t.Fatalf("never healthy (every connector RUNNING on an active slot, heartbeats, no lag): %v\n%s", rep.Err(), out.String())
		}
		time.Sleep(time.Second)
	}
	if rep.SLA != reg.SLA.CDCFreshness.Duration || !strings.HasPrefix(rep.Plugin, "3.") {
		t.Errorf("report sla %s plugin %q, want sla.cdc_freshness and Debezium 3.x", rep.SLA, rep.Plugin)
	}
	out.Reset()
	rep.Write(&out)
	t.Logf("healthy:\n%s", out.String())
}

func problems(rep *health.Report) map[string]string {
	out := map[string]string{}
	for _, s := range rep.Shards {
		out[s.Shard] = strings.Join(s.Problems, "; ")
	}
	return out
}

func shard(rep *health.Report, id string) health.Shard {
	for _, s := range rep.Shards {
		if s.Shard == id {
			return s
		}
	}
	return health.Shard{}
}

func wantErr(t *testing.T, rep *health.Report, code int, names ...string) error {
	t.Helper()
	err := rep.Err()
	if exitcode.Of(err) != code {
		t.Fatalf("report error %v (exit %d), want exit %d", err, exitcode.Of(err), code)
	}
	for _, n := range names {
		if !strings.Contains(err.Error(), n) {
			t.Errorf("report error %q does not name %s", err, n)
		}
	}
	return err
}

func waitStatus(t *testing.T, ctx context.Context, stack *cdctest.Stack, c *connector.Client, shard string, ok func(connector.Status) bool) {
	t.Helper()
	for deadline := time.Now().Add(2 * time.Minute); ; {
		st, err := c.Status(ctx, connector.Name(shard))
		if err == nil && ok(st) {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("connector of %s: %s %v\n%s", shard, st.Summary(), err, tail(stack.ConnectLog(), 30))
		}
		time.Sleep(500 * time.Millisecond)
	}
}

func exec(t *testing.T, ctx context.Context, dsn, sql string) {
	t.Helper()
	conn, err := pgx.Connect(ctx, dsn)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close(ctx)
	if _, err := conn.Exec(ctx, sql); err != nil {
		t.Fatal(err)
	}
}

// commitEnds commits the group at the end of every topic (what a caught-up tokenize
// leaves behind).
func commitEnds(t *testing.T, ctx context.Context, brokers []string) {
	t.Helper()
	cl, err := kgo.NewClient(kgo.SeedBrokers(brokers...))
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	adm := kadm.NewClient(cl)
	ends, err := adm.ListEndOffsets(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if err := adm.CommitAllOffsets(ctx, group, ends.Offsets()); err != nil {
		t.Fatal(err)
	}
}

func tail(s string, n int) string {
	lines := strings.Split(s, "\n")
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	return strings.Join(lines, "\n")
}

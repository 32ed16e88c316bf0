package connector_test

import (
	"context"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/shopsphere/shardflow/internal/cdc/cdctest"
	"github.com/shopsphere/shardflow/internal/connector"
	"github.com/shopsphere/shardflow/internal/fleet/fleettest"
	"github.com/shopsphere/shardflow/internal/registry"
)

// TestPlanApplyOnWorker renders a shard's connector, plans it against a real Connect
// worker (create), applies it, plans again (unchanged), and reads the change events
// Debezium publishes for rows written on the real shard: card_cvv and card_expiry are
// not in them.
func TestPlanApplyOnWorker(t *testing.T) {
	root := cdctest.Require(t)
	base, err := os.ReadFile(filepath.Join(root, "shards.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	text, err := registry.Generate(base, 1, 0)
	if err != nil {
		t.Fatal(err)
	}
	reg := fleettest.Registry(t, string(text))
	fl := fleettest.Start(t, reg)
	stack := cdctest.Start(t)
	ctx, cancel := context.WithTimeout(context.Background(), 4*time.Minute)
	defer cancel()

	sh := fl.Shards[0]
	sec, err := connector.SecretsFile(sh.ID, sh.ReplicationDSN)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(stack.WorkerDir(), connector.SecretsDir, sh.ID+".properties"), sec, 0o600); err != nil {
		t.Fatal(err)
	}
	// A row before the connector exists arrives as a snapshot read ('r').
	admin, err := pgx.Connect(ctx, sh.AdminDSN)
	if err != nil {
		t.Fatal(err)
	}
	defer admin.Close(ctx)
	insertPayment(t, ctx, admin, "01890000-0000-7000-8000-000000000001")

	desired, err := connector.RenderAll(reg, "shardflow")
	if err != nil {
		t.Fatal(err)
	}
	c := connector.NewClient(stack.ConnectURL, nil)
	plan, err := connector.Plan(ctx, c, desired)
	if err != nil {
		t.Fatal(err)
	}
	if len(plan) != 1 || plan[0].Action != connector.Create {
		t.Fatalf("first plan: %+v, want one create", plan)
	}
	if err := connector.Apply(ctx, c, plan); err != nil {
		t.Fatal(err)
	}
	plan, err = connector.Plan(ctx, c, desired)
	if err != nil {
		t.Fatal(err)
	}
	if connector.Pending(plan) || plan[0].Action != connector.Unchanged {
		t.Fatalf("plan after apply: %+v, want unchanged", plan)
	}
	// A changed setting shows as an update of that key only.
	changed := map[string]connector.Config{}
	for n, cfg := range desired {
		cp := connector.Config{}
		for k, v := range cfg {
			cp[k] = v
		}
		cp["heartbeat.interval.ms"] = "5000"
		changed[n] = cp
	}
	plan, err = connector.Plan(ctx, c, changed)
	if err != nil {
		t.Fatal(err)
	}
	if plan[0].Action != connector.Update || len(plan[0].Keys) != 1 || plan[0].Keys[0].Key != "heartbeat.interval.ms" {
		t.Fatalf("plan of a changed heartbeat: %+v", plan[0])
	}

	name := connector.Name(sh.ID)
	deadline := time.Now().Add(2 * time.Minute)
	for {
		st, err := c.Status(ctx, name)
		if err == nil && st.Running() {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("connector %s not running: %+v %v\n%s", name, st, err, tail(stack.ConnectLog(), 30))
		}
		time.Sleep(500 * time.Millisecond)
	}
	insertPayment(t, ctx, admin, "01890000-0000-7000-8000-000000000002")

	cl, err := kgo.NewClient(kgo.SeedBrokers(stack.Brokers...),
		kgo.ConsumeTopics(connector.Topic("shardflow", sh.ID, "payments")),
		kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()), kgo.AllowAutoTopicCreation())
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	ops := map[string]string{}
	for len(ops) < 2 {
		fs := cl.PollFetches(ctx)
		if ctx.Err() != nil {
			t.Fatalf("events seen %v before the deadline\n%s", ops, tail(stack.ConnectLog(), 30))
		}
		fs.EachRecord(func(r *kgo.Record) {
			if strings.Contains(string(r.Value), "card_cvv") || strings.Contains(string(r.Value), "card_expiry") {
				t.Errorf("event carries a dropped column: offset %d", r.Offset)
			}
			var ev struct {
				Op    string         `json:"op"`
				After map[string]any `json:"after"`
			}
			if err := json.Unmarshal(r.Value, &ev); err != nil {
				t.Fatalf("decode event: %v", err)
			}
			ops[ev.After["payment_id"].(string)] = ev.Op
		})
	}
	if ops["01890000-0000-7000-8000-000000000001"] != "r" || ops["01890000-0000-7000-8000-000000000002"] != "c" {
		t.Errorf("ops by payment: %v, want r then c", ops)
	}
}

func insertPayment(t *testing.T, ctx context.Context, db *pgx.Conn, id string) {
	t.Helper()
	_, err := db.Exec(ctx, `INSERT INTO payments (payment_id, order_id, customer_id, bucket, kind, status, amount_cents, currency,
		card_number, card_holder, card_expiry, card_cvv, card_last4)
		VALUES ($1, $1, 42, 7, 'charge', 'captured', 1999, 'EUR', '4111111111111111', 'A Holder', '12/30', '987', '1111')`, id)
	if err != nil {
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

package connector_test

import (
	"context"
	"encoding/json"
	"fmt"
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
	"github.com/shopsphere/shardflow/internal/tokenize"
)

// workerTestKey is the tokenizer key the worker's transform reads (connector.WriteTokenizerKey).
const workerTestKey = "worker-test-tokenizer-key-0123456789abcdef"

// TestPlanApplyOnWorker renders a shard's connector, plans it against a real Connect
// worker (create), applies it, plans again (unchanged), and reads the change events
// Debezium publishes for rows written on the real shard: card_cvv and card_expiry are
// not in them, and the card number, holder and a card number typed into an order note
// arrive as the Go tokenizer's tokens (the transform in the real worker, beside the Go
// implementation: the cross-language check on live events). Then a key rotation: a new
// key id with its own key file, applied, and the next events carry the new key's tokens.
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
	stack.WriteSecrets(t, reg.Tokenizer, map[string]string{sh.ID: sh.ReplicationDSN}, workerTestKey)
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
	k1, err := tokenize.New(reg.Tokenizer.KeyID, []byte(workerTestKey))
	if err != nil {
		t.Fatal(err)
	}
	checkTokens(t, ctx, stack, sh.ID, "01890000-0000-7000-8000-000000000002", k1)

	// Rotation (decision 0014): key id k2 with its own key file; apply; new events carry k2.
	const k2Key = "worker-test-tokenizer-key-k2-fedcba987654"
	rotated := *reg
	rotated.Tokenizer.KeyID, rotated.Tokenizer.Key.K8sKey = "k2", "key-k2"
	if _, err := connector.WriteTokenizerKey(filepath.Join(stack.WorkerDir(), connector.TokenizerDir), rotated.Tokenizer, k2Key); err != nil {
		t.Fatal(err)
	}
	desired, err = connector.RenderAll(&rotated, "shardflow")
	if err != nil {
		t.Fatal(err)
	}
	plan, err = connector.Plan(ctx, c, desired)
	if err != nil {
		t.Fatal(err)
	}
	if plan[0].Action != connector.Update || len(plan[0].Keys) != 2 {
		t.Fatalf("plan of a rotation: %+v, want an update of the key id and the key reference", plan[0])
	}
	if err := connector.Apply(ctx, c, plan); err != nil {
		t.Fatal(err)
	}
	k2, err := tokenize.New("k2", []byte(k2Key))
	if err != nil {
		t.Fatal(err)
	}
	deadline = time.Now().Add(2 * time.Minute)
	for n := 3; ; n++ {
		// the task restarts with the new config; a row written before it runs may still
		// carry k1, so write until one arrives with k2
		id := fmt.Sprintf("01890000-0000-7000-8000-%012d", n)
		insertPayment(t, ctx, admin, id)
		if ev := eventOf(t, ctx, stack, sh.ID, "payments", "payment_id", id); strings.HasPrefix(ev["card_number"].(string), "tok_k2_") {
			checkTokens(t, ctx, stack, sh.ID, id, k2)
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("no event with k2 tokens after the rotation\n%s", tail(stack.ConnectLog(), 30))
		}
	}
}

// checkTokens: the payment's event and the order note's event carry exactly what the Go
// tokenizer lands for them, and no byte of the clear values.
func checkTokens(t *testing.T, ctx context.Context, stack *cdctest.Stack, shard, paymentID string, tok *tokenize.Tokenizer) {
	t.Helper()
	ev := eventOf(t, ctx, stack, shard, "payments", "payment_id", paymentID)
	want := map[string]string{"card_number": tok.Token("card_number", testPAN), "card_holder": tok.Token("card_holder", testHolder), "card_last4": "1111"}
	for col, w := range want {
		if ev[col] != w {
			t.Errorf("payment %s: %s arrives as %v, the Go tokenizer lands %s", paymentID, col, ev[col], w)
		}
	}
	note := eventOf(t, ctx, stack, shard, "orders", "order_id", paymentID)
	if got, _ := tok.Redact("note", testNote); note["note"] != got {
		t.Errorf("order %s: note arrives as %q, the Go redaction lands %q", paymentID, note["note"], got)
	}
}

// eventOf returns the row of the latest change event of table on shard whose column
// key is id, failing when any record's bytes hold a clear card number or holder name.
func eventOf(t *testing.T, ctx context.Context, stack *cdctest.Stack, shard, table, key, id string) map[string]any {
	t.Helper()
	cl, err := kgo.NewClient(kgo.SeedBrokers(stack.Brokers...),
		kgo.ConsumeTopics(connector.Topic("shardflow", shard, table)),
		kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()))
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	ctx, cancel := context.WithTimeout(ctx, time.Minute)
	defer cancel()
	var found map[string]any
	for found == nil {
		fs := cl.PollFetches(ctx)
		if ctx.Err() != nil {
			t.Fatalf("no %s event of %s %s\n%s", table, key, id, tail(stack.ConnectLog(), 30))
		}
		fs.EachRecord(func(r *kgo.Record) {
			for _, clear := range []string{testPAN, testPANSpaced, testHolder} {
				if strings.Contains(string(r.Value), clear) {
					t.Fatalf("%s offset %d holds a clear card value", r.Topic, r.Offset)
				}
			}
			var ev struct {
				After map[string]any `json:"after"`
			}
			if err := json.Unmarshal(r.Value, &ev); err != nil {
				t.Fatalf("decode event: %v", err)
			}
			if ev.After[key] == id {
				found = ev.After
			}
		})
	}
	return found
}

// The clear values insertPayment writes.
const (
	testPAN       = "4111111111111111"
	testPANSpaced = "4111 1111 1111 1111"
	testHolder    = "A Holder"
	testNote      = "pay with " + testPANSpaced + " please, call 415-555-0100"
)

// insertPayment writes an order with a note holding a card number, and its payment,
// both keyed id.
func insertPayment(t *testing.T, ctx context.Context, db *pgx.Conn, id string) {
	t.Helper()
	_, err := db.Exec(ctx, `INSERT INTO orders (order_id, customer_id, bucket, status, currency, region, total_cents, note)
		VALUES ($1, 42, 7, 'placed', 'EUR', 'eu-west', 1999, $2)`, id, testNote)
	if err != nil {
		t.Fatal(err)
	}
	_, err = db.Exec(ctx, `INSERT INTO payments (payment_id, order_id, customer_id, bucket, kind, status, amount_cents, currency,
		card_number, card_holder, card_expiry, card_cvv, card_last4)
		VALUES ($1, $1, 42, 7, 'charge', 'captured', 1999, 'EUR', $2, $3, '12/30', '987', '1111')`, id, testPAN, testHolder)
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

package main

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/shopsphere/shardflow/internal/cdc/cdctest"
	"github.com/shopsphere/shardflow/internal/landing"
	"github.com/shopsphere/shardflow/internal/load"
	"github.com/shopsphere/shardflow/internal/objstore/s3"
	"github.com/shopsphere/shardflow/internal/objstore/s3/s3test"
	"github.com/shopsphere/shardflow/internal/registry"
	"github.com/shopsphere/shardflow/internal/tokenize"
	"github.com/shopsphere/shardflow/internal/warehouse/duckdb"
)

// TestCDCIntoS3: `tokenize cdc --bounded` on an environment whose object store is S3
// (versitygw) lands the change events of a shard's topic in the bucket, as the
// connector's transform tokenized them, with manifests, holding no key; load reads them back out of the bucket into DuckDB, where card_number holds
// the tokens `tokenize lookup` gives and no card number.
func TestCDCIntoS3(t *testing.T) {
	srv := s3test.Start()
	defer srv.Stop()
	srv.Need(t)
	stack := cdctest.Start(t)
	ctx := context.Background()
	bucket := srv.Bucket(t)

	b, err := os.ReadFile("../../shards.yaml")
	if err != nil {
		t.Fatal(err)
	}
	regPath := filepath.Join(t.TempDir(), "shards.yaml")
	text := strings.Replace(string(b), "environments:\n", fmt.Sprintf(`environments:
  s3:
    object_store: {kind: s3, bucket: %s, prefix: shardflow, region: %s, endpoint: %q}
    warehouse: {kind: duckdb, path: unused.duckdb}
    kafka: {brokers: [%q], topic_prefix: shardflow}
    airflow: {target: local}
`, bucket, s3test.Region, srv.Endpoint, stack.Brokers[0]), 1)
	if err := os.WriteFile(regPath, []byte(text), 0o644); err != nil {
		t.Fatal(err)
	}
	reg, err := registry.Load(regPath)
	if err != nil {
		t.Fatal(err)
	}

	var cust int64
	for c := int64(1); ; c++ {
		if reg.Owns("s00", reg.Bucket(c), time.Now()) {
			cust = c
			break
		}
	}
	const n = 12
	var pans []string
	var vals [][]byte
	for i := range n {
		pan := fmt.Sprintf("4111111111%06d", i)
		pans = append(pans, pan)
		vals = append(vals, paymentEvent(reg, i, cust, pan))
	}
	tk, _ := tokenize.New("k1", []byte(testKey))
	produce(t, stack.Brokers, "shardflow.s00.public.payments", vals...)

	// no tokenizer key: the consumer verifies what the connector's transform tokenized
	env := map[string]string{"SHARDFLOW_REGISTRY": regPath, "SHARDFLOW_ENV": "s3",
		"AWS_ACCESS_KEY_ID": s3test.AccessKey, "AWS_SECRET_ACCESS_KEY": s3test.SecretKey}
	out, errs, code := runT(t, env, "", "cdc", "--bounded", "--group", "s3-test", "--file-records", "5")
	if code != 0 || !strings.Contains(out, fmt.Sprintf("shard s00: 3 files (0 adopted), %d records, %d rows", n, n)) {
		t.Fatalf("tokenize cdc into s3: exit %d\n%s\n%s", code, out, errs)
	}

	st, err := s3.Open(ctx, srv.Config(bucket, "shardflow"))
	if err != nil {
		t.Fatal(err)
	}
	keys, err := st.List(ctx, landing.TablePrefix("payments"))
	if err != nil || len(keys) != 6 {
		t.Fatalf("bucket holds %v (%v), want 3 data files and 3 manifests", keys, err)
	}
	for _, k := range keys {
		rc, err := st.Get(ctx, k)
		if err != nil {
			t.Fatal(err)
		}
		raw, _ := io.ReadAll(rc)
		rc.Close()
		for _, p := range pans {
			if bytes.Contains(raw, []byte(p)) {
				t.Fatalf("%s holds a card number", k)
			}
		}
	}

	wh, err := duckdb.Open(ctx, filepath.Join(t.TempDir(), "wh.duckdb"))
	if err != nil {
		t.Fatal(err)
	}
	defer wh.Close()
	if err := wh.Ensure(ctx, reg.Tables); err != nil {
		t.Fatal(err)
	}
	l := &load.Loader{Store: st, Warehouse: wh, Registry: reg, TempDir: t.TempDir()}
	sums, err := l.LoadAll(ctx, load.Filter{Table: "payments"})
	if err != nil || len(sums) != 1 || sums[0].Loaded != 3 || sums[0].Rows != n {
		t.Fatalf("load from s3: %+v %v", sums, err)
	}
	want := map[string]bool{}
	for _, p := range pans {
		want[tk.Token("card_number", p)] = true
	}
	rows, err := wh.DB().QueryContext(ctx, "SELECT card_number FROM raw.payments")
	if err != nil {
		t.Fatal(err)
	}
	defer rows.Close()
	got := 0
	for rows.Next() {
		var v string
		if err := rows.Scan(&v); err != nil {
			t.Fatal(err)
		}
		if !want[v] {
			t.Errorf("raw.payments.card_number holds a value that is not a token of the events' cards (tok_ prefix: %v)", strings.HasPrefix(v, "tok_"))
		}
		got++
	}
	if got != n {
		t.Fatalf("raw.payments has %d rows, want %d", got, n)
	}
}

// paymentEvent is a Debezium envelope (schemas disabled) of one new payments row.
// paymentEvent is a change event of a payment paid with pan, as the connector's tokenize
// transform publishes it (card number and holder tokenized with testKey).
func paymentEvent(reg *registry.Registry, id int, cust int64, pan string) []byte {
	tk, _ := tokenize.New("k1", []byte(testKey))
	row := map[string]any{
		"payment_id": fmt.Sprintf("01890000-0000-7000-8000-%012d", id), "order_id": fmt.Sprintf("01890000-0000-7000-9000-%012d", id),
		"customer_id": cust, "bucket": reg.Bucket(cust), "kind": "charge", "status": "captured", "amount_cents": 1000 + id,
		"currency": "EUR", "card_number": tk.Token("card_number", pan), "card_holder": tk.Token("card_holder", "Holder "+fmt.Sprint(id)), "card_last4": pan[len(pan)-4:], "deleted": false,
		"created_at": "2026-11-24T10:00:00.123456Z", "updated_at": time.Now().UTC().Format(time.RFC3339Nano), "row_version": 1,
	}
	b, _ := json.Marshal(map[string]any{"op": "c", "after": row,
		"source": map[string]any{"lsn": 100 + id, "txId": 1000 + id, "ts_ms": time.Now().UnixMilli(), "ts_us": time.Now().UnixMicro(), "table": "payments"}})
	return b
}

func produce(t *testing.T, brokers []string, topic string, values ...[]byte) {
	t.Helper()
	cl, err := kgo.NewClient(kgo.SeedBrokers(brokers...), kgo.AllowAutoTopicCreation())
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	for _, v := range values {
		if err := cl.ProduceSync(ctx, &kgo.Record{Topic: topic, Value: v}).FirstErr(); err != nil {
			t.Fatal(err)
		}
	}
}

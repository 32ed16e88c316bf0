package cdc_test

import (
	"bytes"
	"context"
	"encoding/json"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/parquet-go/parquet-go"

	"github.com/shopsphere/shardflow/internal/cdc"
	"github.com/shopsphere/shardflow/internal/cdc/cdctest"
	"github.com/shopsphere/shardflow/internal/exitcode"
	"github.com/shopsphere/shardflow/internal/landing"
	"github.com/shopsphere/shardflow/internal/registry"
)

// TestSchemaChangeMidTopic: the shard gets a rolling-out column (adding: true) in the
// middle of its topic, inside one file: the events before it land NULL for it, named in
// _absent_columns, the events after it land its values; a column shards.yaml does not
// declare (a stale connector's include list) is never landed and is reported with shard,
// table and column, never its value. A declared column missing from an event is a drop
// or a rename: the partition stops at that event (quarantine, exit 4) naming it.
func TestSchemaChangeMidTopic(t *testing.T) {
	stack := cdctest.Start(t)
	reg := loadRegistry(t)
	for i := range reg.Tables {
		if reg.Tables[i].Name == "payments" {
			reg.Tables[i].Columns = append(reg.Tables[i].Columns, registry.Column{Name: "refund_reason", Type: "text", Adding: true})
		}
	}
	lake := t.TempDir()
	cust := customerOn(t, reg, "s00", 0)
	const pin = "9876"
	with := func(ev []byte, fields map[string]any) []byte {
		var env map[string]any
		if err := json.Unmarshal(ev, &env); err != nil {
			t.Fatal(err)
		}
		for k, v := range fields {
			env["after"].(map[string]any)[k] = v
		}
		b, _ := json.Marshal(env)
		return b
	}
	var vals [][]byte
	for i := 0; i < 3; i++ { // before the ALTER
		vals = append(vals, paymentEvent(reg, "c", i, cust, 1, int64(100+i)))
	}
	for i := 3; i < 6; i++ { // after it, with a column nobody declared too
		vals = append(vals, with(paymentEvent(reg, "c", i, cust, 1, int64(100+i)), map[string]any{"refund_reason": "damaged", "card_pin": pin}))
	}
	produce(t, stack.Brokers, "shardflow.s00.public.payments", vals...)

	var logs bytes.Buffer
	c := newConsumer(t, reg, stack.Brokers, lake)
	c.Log = slog.New(slog.NewTextHandler(&logs, nil))
	sums, err := c.Run(context.Background(), true)
	if err != nil || len(sums) != 1 || sums[0].Rows != 6 || sums[0].Err != nil {
		t.Fatalf("run: %+v %v, want 6 rows of s00", sums, err)
	}
	files := landedFiles(t, lake, "payments")
	if len(files) != 1 {
		t.Fatalf("files %s, want one", ranges(files))
	}
	data, err := os.ReadFile(filepath.Join(lake, files[0].key))
	if err != nil {
		t.Fatal(err)
	}
	if bytes.Contains(data, []byte("card_pin")) {
		t.Fatal("the undeclared column card_pin landed")
	}
	pf, err := parquet.OpenFile(bytes.NewReader(data), int64(len(data)))
	if err != nil {
		t.Fatal(err)
	}
	for i, r := range readRows(t, pf) {
		reason, absent := r["refund_reason"], r[landing.ColAbsent]
		if i < 3 && (reason != nil || absent != "refund_reason") {
			t.Errorf("row %d, before the ALTER: refund_reason %v, _absent_columns %v; want NULL, refund_reason", i, reason, absent)
		}
		if i >= 3 && (reason != "damaged" || absent != nil) {
			t.Errorf("row %d, after the ALTER: refund_reason %v, _absent_columns %v; want damaged, NULL", i, reason, absent)
		}
	}
	mb, err := os.ReadFile(filepath.Join(lake, landing.ManifestKey(files[0].key)))
	if err != nil {
		t.Fatal(err)
	}
	if m, _ := landing.ParseManifest(mb); m == nil || strings.Join(m.AbsentColumns, ",") != "refund_reason" {
		t.Errorf("manifest absent_columns: %s", mb)
	}
	line := logs.String()
	if strings.Count(line, "column=card_pin") != 1 || !strings.Contains(line, "level=WARN") || !strings.Contains(line, "shard=s00") || !strings.Contains(line, "table=payments") || strings.Contains(line, pin) {
		t.Errorf("want one warning naming shard s00, table payments and column card_pin, without its value:\n%s", line)
	}

	// a declared column gone from the events: refused, named
	dropped := paymentEvent(reg, "c", 9, cust, 1, 300)
	var env map[string]any
	_ = json.Unmarshal(dropped, &env)
	delete(env["after"].(map[string]any), "status")
	dropped, _ = json.Marshal(env)
	produce(t, stack.Brokers, "shardflow.s00.public.payments", dropped)
	sums, err = c.Run(context.Background(), true)
	if err != nil || len(sums) != 1 || len(sums[0].Quarantined) != 1 {
		t.Fatalf("a dropped column: %+v %v, want s00's partition quarantined", sums, err)
	}
	q := sums[0].Quarantined[0]
	if q.Shard != "s00" || q.Table != "payments" || q.Offset != 6 || q.ExitCode != exitcode.Drift || !strings.Contains(q.Reason, cdc.ErrDrift.Error()+": column status is missing") {
		t.Fatalf("a dropped column: quarantine %+v, want exit 4 at offset 6 naming shard s00, table payments, column status", q)
	}
}

package cdc_test

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/parquet-go/parquet-go"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/shopsphere/shardflow/internal/cdc"
	"github.com/shopsphere/shardflow/internal/cdc/cdctest"
	"github.com/shopsphere/shardflow/internal/exitcode"
	"github.com/shopsphere/shardflow/internal/landing"
	"github.com/shopsphere/shardflow/internal/metrics"
	"github.com/shopsphere/shardflow/internal/objstore"
	"github.com/shopsphere/shardflow/internal/objstore/dir"
	"github.com/shopsphere/shardflow/internal/pause"
	"github.com/shopsphere/shardflow/internal/registry"
	"github.com/shopsphere/shardflow/internal/testenv"
	"github.com/shopsphere/shardflow/internal/tokenize"
)

const testKey = "0123456789abcdef0123456789abcdef-test-key"

func loadRegistry(t *testing.T) *registry.Registry {
	t.Helper()
	reg, err := registry.Load(filepath.Join(testenv.Root(t), "shards.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	return reg
}

// testTok is the tokenizer the connectors' transform would run with testKey: hand-made
// events carry what it lands (asTransformed), as events from a real worker do.
var testTok = func() *tokenize.Tokenizer {
	tk, err := tokenize.New("k1", []byte(testKey))
	if err != nil {
		panic(err)
	}
	return tk
}()

// asTransformed applies the payments table's PCI policies to a row in place, as the
// Connect transform does before Kafka.
func asTransformed(row map[string]any) map[string]any {
	for _, col := range []string{"card_number", "card_holder"} {
		if v, ok := row[col].(string); ok {
			row[col] = testTok.Token(col, v)
		}
	}
	return row
}

func newConsumer(t *testing.T, reg *registry.Registry, brokers []string, lake string) *cdc.Consumer {
	t.Helper()
	return &cdc.Consumer{
		Registry: reg, Brokers: brokers, TopicPrefix: "shardflow", Group: "test-" + t.Name(),
		Store:       dir.Store{Root: lake},
		NewWriter:   landing.OpenParquet,
		FileRecords: 10, FlushInterval: time.Second, CodeVersion: "test",
	}
}

// customerOn returns a customer id whose bucket shard owns now.
func customerOn(t *testing.T, reg *registry.Registry, shard string, n int) int64 {
	t.Helper()
	for c := int64(1); c < 1_000_000; c++ {
		if reg.Owns(shard, reg.Bucket(c), time.Now()) {
			if n == 0 {
				return c
			}
			n--
		}
	}
	t.Fatal("no customer found")
	return 0
}

// paymentEvent is a Debezium envelope (schemas disabled) of one payments row, as the
// connector's transform leaves it (clearPaymentEvent: as it would be without one).
func paymentEvent(reg *registry.Registry, op string, id int, cust int64, version int64, lsn int64) []byte {
	return paymentEnvelope(reg, op, id, cust, version, lsn, asTransformed)
}

// clearPaymentEvent is paymentEvent with the card number and holder in clear: what a
// connector without the tokenize transform would publish.
func clearPaymentEvent(reg *registry.Registry, op string, id int, cust int64, version int64, lsn int64) []byte {
	return paymentEnvelope(reg, op, id, cust, version, lsn, func(r map[string]any) map[string]any { return r })
}

func paymentEnvelope(reg *registry.Registry, op string, id int, cust int64, version int64, lsn int64, transform func(map[string]any) map[string]any) []byte {
	row := map[string]any{
		"payment_id": fmt.Sprintf("01890000-0000-7000-8000-%012d", id), "order_id": fmt.Sprintf("01890000-0000-7000-9000-%012d", id),
		"customer_id": cust, "bucket": reg.Bucket(cust), "kind": "charge", "status": "captured", "amount_cents": 1000 + id,
		"currency": "EUR", "card_number": fmt.Sprintf("4111111111%06d", id), "card_holder": "Holder " + fmt.Sprint(id),
		"card_last4": fmt.Sprintf("%04d", id%10000), "deleted": false,
		"created_at": "2026-11-24T10:00:00.123456Z", "updated_at": time.Now().UTC().Format(time.RFC3339Nano), "row_version": version,
	}
	row = transform(row)
	env := map[string]any{"op": op, "source": map[string]any{"lsn": lsn, "txId": 1000 + lsn, "ts_ms": time.Now().UnixMilli(), "ts_us": time.Now().UnixMicro(), "table": "payments"}}
	if op == "d" {
		env["before"] = row
		env["after"] = nil
	} else {
		env["after"] = row
	}
	b, _ := json.Marshal(env)
	return b
}

func produce(t testing.TB, brokers []string, topic string, values ...[]byte) {
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

type fileRange struct {
	key         string
	first, last int64
	rows        int64
}

// landedFiles returns the manifests of one table's CDC files, by first offset.
func landedFiles(t *testing.T, lake, table string) []fileRange {
	t.Helper()
	store := dir.Store{Root: lake}
	keys, err := store.List(context.Background(), landing.TablePrefix(table))
	if err != nil {
		t.Fatal(err)
	}
	var out []fileRange
	for _, k := range keys {
		if !strings.HasSuffix(k, landing.ManifestSuffix) {
			continue
		}
		b, err := os.ReadFile(filepath.Join(lake, k))
		if err != nil {
			t.Fatal(err)
		}
		m, err := landing.ParseManifest(b)
		if err != nil {
			t.Fatal(err)
		}
		if m.Source != landing.CDC {
			continue
		}
		out = append(out, fileRange{m.DataKey, *m.OffsetFirst, *m.OffsetLast, m.Rows})
	}
	sort.Slice(out, func(i, j int) bool { return out[i].first < out[j].first })
	return out
}

func ranges(fs []fileRange) string {
	var s []string
	for _, f := range fs {
		s = append(s, fmt.Sprintf("%d-%d", f.first, f.last))
	}
	return strings.Join(s, ",")
}

// TestBoundedRun: a bounded run lands the records up to the end offsets at its start,
// cut at offset blocks of FileRecords and at the end, with tokenized card columns and
// CDC lineage; the next run lands nothing, and one after new records continues at the
// committed offset.
func TestBoundedRun(t *testing.T) {
	stack := cdctest.Start(t)
	reg := loadRegistry(t)
	lake := t.TempDir()
	topic := "shardflow.s00.public.payments"
	cust := customerOn(t, reg, "s00", 0)
	var vals [][]byte
	for i := 0; i < 23; i++ {
		vals = append(vals, paymentEvent(reg, "c", i, cust, 1, int64(100+i)))
	}
	vals = append(vals, paymentEvent(reg, "u", 3, cust, 2, 200), paymentEvent(reg, "d", 4, cust, 1, 201))
	produce(t, stack.Brokers, topic, vals...)

	ctx := context.Background()
	c := newConsumer(t, reg, stack.Brokers, lake)
	sums, err := c.Run(ctx, true)
	if err != nil {
		t.Fatal(err)
	}
	if len(sums) != 1 || sums[0].Shard != "s00" || sums[0].Files != 3 || sums[0].Rows != 25 {
		t.Fatalf("summaries %+v, want s00 with 3 files and 25 rows", sums)
	}
	files := landedFiles(t, lake, "payments")
	if got := ranges(files); got != "0-9,10-19,20-24" {
		t.Fatalf("files %s, want 0-9,10-19,20-24", got)
	}
	// contents: tokens, lineage, no dropped column
	f, err := os.Open(filepath.Join(lake, files[2].key))
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	st, _ := f.Stat()
	pf, err := parquet.OpenFile(f, st.Size())
	if err != nil {
		t.Fatal(err)
	}
	for _, col := range []string{"card_cvv", "card_expiry"} {
		if _, ok := pf.Schema().Lookup(col); ok {
			t.Errorf("landed file has column %s", col)
		}
	}
	rows := readRows(t, pf)
	ops := ""
	for _, r := range rows {
		if cn, _ := r["card_number"].(string); !strings.HasPrefix(cn, "tok_k1_") {
			t.Errorf("card_number not tokenized: %q", redact(cn))
		}
		if r["_source"] != "cdc" || r["_shard"] != "s00" || r["_lsn"] == nil || r["_txid"] == nil {
			t.Errorf("lineage: %v %v %v %v", r["_source"], r["_shard"], r["_lsn"], r["_txid"])
		}
		ops += r["_op"].(string)
	}
	if ops != "cccud" {
		t.Errorf("ops of the last file %q, want cccud", ops)
	}

	// nothing new: nothing landed
	sums, err = c.Run(ctx, true)
	if err != nil || len(sums) != 0 {
		t.Fatalf("second run: %+v %v, want nothing", sums, err)
	}
	produce(t, stack.Brokers, topic, paymentEvent(reg, "c", 30, cust, 1, 300), paymentEvent(reg, "c", 31, cust, 1, 301))
	if _, err := c.Run(ctx, true); err != nil {
		t.Fatal(err)
	}
	if got := ranges(landedFiles(t, lake, "payments")); got != "0-9,10-19,20-24,25-26" {
		t.Fatalf("files %s, want 0-9,10-19,20-24,25-26", got)
	}
}

// TestCrashBeforeCommit: a run that dies after a file's manifest is stored but before
// its offset is committed leaves the file; the next run adopts it instead of cutting
// the records again (which, with more records available, would give another key and
// land them twice). A run that dies between the data file and its manifest leaves a
// data file without manifest, which the next run deletes and rewrites.
func TestCrashBeforeCommit(t *testing.T) {
	stack := cdctest.Start(t)
	reg := loadRegistry(t)
	lake := t.TempDir()
	topic := "shardflow.s01.public.payments"
	cust := customerOn(t, reg, "s01", 0)
	var vals [][]byte
	for i := 0; i < 5; i++ {
		vals = append(vals, paymentEvent(reg, "c", i, cust, 1, int64(100+i)))
	}
	produce(t, stack.Brokers, topic, vals...)
	ctx := context.Background()
	c := newConsumer(t, reg, stack.Brokers, lake)
	crash := errors.New("crash")
	c.Failpoint = func(step, key string) error {
		if step == "manifest" {
			return crash
		}
		return nil
	}
	if _, err := c.Run(ctx, true); !errors.Is(err, crash) {
		t.Fatalf("run with a crash after the manifest: %v", err)
	}
	if got := ranges(landedFiles(t, lake, "payments")); got != "0-4" {
		t.Fatalf("files after the crash %s, want 0-4", got)
	}
	// more records arrive before the retry: a re-cut would land 0-7
	produce(t, stack.Brokers, topic, paymentEvent(reg, "c", 5, cust, 1, 105), paymentEvent(reg, "c", 6, cust, 1, 106), paymentEvent(reg, "c", 7, cust, 1, 107))
	c.Failpoint = func(step, key string) error {
		if step == "data" && strings.Contains(key, "00000000000000000005-") {
			return crash
		}
		return nil
	}
	sums, err := c.Run(ctx, true)
	if !errors.Is(err, crash) {
		t.Fatalf("run with a crash after the data file: %v", err)
	}
	if len(sums) != 1 || sums[0].Adopted != 1 {
		t.Fatalf("summaries %+v, want the landed file adopted", sums)
	}
	orphans, _ := filepath.Glob(filepath.Join(lake, "landing/payments/source=cdc/shard=s01/dt=*/*__00000000000000000005-*.parquet"))
	if len(orphans) != 1 {
		t.Fatalf("data files of 5-: %v, want one without manifest", orphans)
	}
	produce(t, stack.Brokers, topic, paymentEvent(reg, "c", 8, cust, 1, 108))
	c.Failpoint = nil
	if _, err := c.Run(ctx, true); err != nil {
		t.Fatal(err)
	}
	// 5-7 was claimed before its data was stored (claim.go): the range is final, so the
	// retry lands it as claimed (its data file is kept, not an orphan) and 8 on its own
	if got := ranges(landedFiles(t, lake, "payments")); got != "0-4,5-7,8-8" {
		t.Fatalf("files %s, want 0-4,5-7,8-8", got)
	}
	orphans, _ = filepath.Glob(filepath.Join(lake, "landing/payments/source=cdc/shard=s01/dt=*/*__00000000000000000005-*.parquet"))
	if len(orphans) != 1 || !strings.HasSuffix(orphans[0], "-00000000000000000007.parquet") {
		t.Fatalf("data files of 5-: %v, want only the claimed 5-7", orphans)
	}
}

// TestPoisonEventQuarantined: a poison event on one shard (a drop-policy column in the
// event) quarantines its partition at its offset: the records before it land, nothing
// after it does, the run succeeds and the other shard keeps landing, run after run. A
// retry of the still-poison event quarantines it again; a skip decision lands every
// record after it and never the event itself. The exporter reports the quarantine.
func TestPoisonEventQuarantined(t *testing.T) {
	stack := cdctest.Start(t)
	reg := loadRegistry(t)
	lake := t.TempDir()
	store := dir.Store{Root: lake}
	ctx := context.Background()
	t00, t01 := "shardflow.s00.public.payments", "shardflow.s01.public.payments"
	c00, c01 := customerOn(t, reg, "s00", 0), customerOn(t, reg, "s01", 0)
	good := func(shard string, from, n int) [][]byte {
		cust := c00
		if shard == "s01" {
			cust = c01
		}
		var out [][]byte
		for i := from; i < from+n; i++ {
			out = append(out, paymentEvent(reg, "c", i, cust, 1, int64(i)))
		}
		return out
	}
	bad := paymentEvent(reg, "c", 99, c00, 1, 99)
	var env map[string]any
	_ = json.Unmarshal(bad, &env)
	env["after"].(map[string]any)["card_cvv"] = "987"
	bad, _ = json.Marshal(env)
	// s00: offsets 0-4 good, 5 poison, 6-7 good; s01: 0-3 good
	produce(t, stack.Brokers, t00, append(append(good("s00", 0, 5), bad), good("s00", 5, 2)...)...)
	produce(t, stack.Brokers, t01, good("s01", 100, 4)...)
	c := newConsumer(t, reg, stack.Brokers, lake)
	run := func(step string) map[string]cdc.Summary {
		t.Helper()
		sums, err := c.Run(ctx, true)
		if err != nil {
			t.Fatalf("%s: run failed (a quarantine must not fail it): %v", step, err)
		}
		out := map[string]cdc.Summary{}
		for _, s := range sums {
			out[s.Shard] = s
		}
		return out
	}
	files := func(shard string) string {
		var fs []fileRange
		for _, f := range landedFiles(t, lake, "payments") {
			if strings.Contains(f.key, "shard="+shard+"/") {
				fs = append(fs, f)
			}
		}
		return ranges(fs)
	}
	quarantined := func(step string, wantOffset int64) {
		t.Helper()
		qs, err := cdc.Quarantines(ctx, store)
		if err != nil {
			t.Fatal(err)
		}
		if len(qs) != 1 || qs[0].Topic != t00 || qs[0].Partition != 0 || qs[0].Offset != wantOffset || qs[0].Shard != "s00" ||
			qs[0].Table != "payments" || qs[0].ExitCode != 3 || !strings.Contains(qs[0].Reason, "card_cvv") {
			t.Fatalf("%s: quarantines %+v, want s00's payments partition 0 at offset %d, exit 3, naming card_cvv", step, qs, wantOffset)
		}
		if strings.Contains(qs[0].Reason, "987") {
			t.Fatalf("%s: the quarantine holds the dropped value", step)
		}
	}

	// 1. The records before the poison event land, the event and those after it wait; s01 lands.
	sums := run("first run")
	if s := sums["s00"]; len(s.Quarantined) != 1 || s.Quarantined[0].Offset != 5 || s.Rows != 5 {
		t.Fatalf("s00 %+v, want 5 rows landed and a quarantine at offset 5", s)
	}
	if got := files("s00"); got != "0-4" {
		t.Fatalf("s00 files %s, want 0-4 (cut before the poison event)", got)
	}
	if got := files("s01"); got != "0-3" {
		t.Fatalf("s01 files %s, want 0-3", got)
	}
	quarantined("first run", 5)

	// The exporter reports it for the alert.
	ex := &metrics.Exporter{Registry: reg, Store: store}
	preg := prometheus.NewRegistry()
	preg.MustRegister(ex)
	mfs, err := preg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	var reported []string
	for _, mf := range mfs {
		if mf.GetName() != metrics.Quarantined {
			continue
		}
		for _, m := range mf.GetMetric() {
			var ls []string
			for _, l := range m.GetLabel() {
				ls = append(ls, l.GetName()+"="+l.GetValue())
			}
			reported = append(reported, strings.Join(ls, ","))
		}
	}
	want := "fleet=" + reg.Fleet + ",offset=5,partition=0,shard=s00,table=payments,topic=" + t00
	if len(reported) != 1 || reported[0] != want {
		t.Fatalf("exporter reports %v, want [%s]", reported, want)
	}

	// 2. More traffic: s01 keeps landing; s00 lands nothing past its quarantine.
	produce(t, stack.Brokers, t00, good("s00", 7, 2)...)
	produce(t, stack.Brokers, t01, good("s01", 104, 2)...)
	sums = run("second run")
	if got := files("s01"); got != "0-3,4-5" {
		t.Fatalf("s01 files %s, want 0-3,4-5: a quarantine on s00 holds s01 back", got)
	}
	if got := files("s00"); got != "0-4" || len(sums["s00"].Quarantined) != 1 {
		t.Fatalf("s00 files %s (summary %+v), want still 0-4 and quarantined: nothing after a poison event lands", got, sums["s00"])
	}

	// 3. A release must name the quarantined event; a retry of a still-poison event
	// quarantines it again at the same offset.
	if _, err := cdc.Release(ctx, store, t00, 0, 6, cdc.Decision{Action: cdc.Retry, Reason: "r", By: "test"}); exitcode.Of(err) != exitcode.Usage {
		t.Fatalf("release of another offset: %v, want a usage error", err)
	}
	if _, err := cdc.Release(ctx, store, t00, 0, 5, cdc.Decision{Action: cdc.Retry, Reason: "connector fixed", By: "test"}); err != nil {
		t.Fatal(err)
	}
	run("after retry")
	quarantined("after retry", 5)
	if got := files("s00"); got != "0-4" {
		t.Fatalf("s00 files %s after a retry of a poison event, want 0-4", got)
	}

	// 4. Skip, by a recorded decision: everything after the event lands, the event never.
	if _, err := cdc.Release(ctx, store, t00, 0, 5, cdc.Decision{Action: cdc.Skip, Reason: "CVV sent by a misconfigured connector, INC-1", By: "test"}); err != nil {
		t.Fatal(err)
	}
	sums = run("after skip")
	if got := files("s00"); got != "0-4,6-9" {
		t.Fatalf("s00 files %s after skip, want 0-4,6-9 (offset 5 never landed)", got)
	}
	if s := sums["s00"]; len(s.Quarantined) != 0 || s.SkippedByDecision != 1 || s.Rows != 4 {
		t.Fatalf("s00 after skip %+v, want 4 rows, one event skipped by decision, no quarantine", s)
	}
	if qs, _ := cdc.Quarantines(ctx, store); len(qs) != 0 {
		t.Fatalf("quarantines after skip: %+v", qs)
	}
	skipped, err := cdc.Skipped(ctx, store)
	if err != nil || len(skipped) != 1 || skipped[0].Offset != 5 || skipped[0].Decision == nil ||
		skipped[0].Decision.By != "test" || !strings.Contains(skipped[0].Decision.Reason, "INC-1") {
		t.Fatalf("skipped %+v %v, want the decision on offset 5 recorded", skipped, err)
	}
	// nothing left: the commit moved past every landed and skipped record
	if sums := run("caught up"); len(sums) != 0 {
		t.Fatalf("a run after catching up did %+v, want nothing", sums)
	}
	var rows int64
	for _, f := range landedFiles(t, lake, "payments") {
		rows += f.rows
	}
	if rows != 9+6 {
		t.Fatalf("%d rows landed, want 15 (9 good of s00, 6 of s01)", rows)
	}
}

// TestClearCardValueQuarantined: an event whose card number arrives in clear (a
// connector without the tokenize transform) or with the transform's marker (a value its
// policy could not take) never lands: its partition stops there and the event is
// quarantined, naming the column, never the value; the shard's other partitions and the
// other shards go on, and nothing in the lake holds the card number.
func TestClearCardValueQuarantined(t *testing.T) {
	stack := cdctest.Start(t)
	reg := loadRegistry(t)
	lake := t.TempDir()
	store := dir.Store{Root: lake}
	ctx := context.Background()
	t00, t01 := "shardflow.s00.public.payments", "shardflow.s01.public.payments"
	c00, c01 := customerOn(t, reg, "s00", 0), customerOn(t, reg, "s01", 0)
	clear := clearPaymentEvent(reg, "c", 7, c00, 1, 7)
	marked := paymentEvent(reg, "c", 8, c01, 1, 8)
	var env map[string]any
	_ = json.Unmarshal(marked, &env)
	env["after"].(map[string]any)["card_last4"] = tokenize.MarkPrefix + "fewer-digits"
	marked, _ = json.Marshal(env)
	produce(t, stack.Brokers, t00, paymentEvent(reg, "c", 1, c00, 1, 1), paymentEvent(reg, "c", 2, c00, 1, 2), clear, paymentEvent(reg, "c", 3, c00, 1, 3))
	produce(t, stack.Brokers, t01, paymentEvent(reg, "c", 4, c01, 1, 4), marked)
	sums, err := newConsumer(t, reg, stack.Brokers, lake).Run(ctx, true)
	if err != nil {
		t.Fatalf("a quarantine must not fail the run: %v", err)
	}
	by := map[string]cdc.Summary{}
	for _, s := range sums {
		by[s.Shard] = s
	}
	if s := by["s00"]; len(s.Quarantined) != 1 || s.Quarantined[0].Offset != 2 || s.Rows != 2 {
		t.Fatalf("s00 %+v, want 2 rows landed and a quarantine at offset 2", s)
	}
	if s := by["s01"]; len(s.Quarantined) != 1 || s.Quarantined[0].Offset != 1 || s.Rows != 1 {
		t.Fatalf("s01 %+v, want 1 row landed and a quarantine at offset 1", s)
	}
	qs, err := cdc.Quarantines(ctx, store)
	if err != nil || len(qs) != 2 {
		t.Fatalf("quarantines %+v, %v", qs, err)
	}
	pan := fmt.Sprintf("4111111111%06d", 7)
	for _, q := range qs {
		want := map[string]string{t00: "column card_number of key 01890000-0000-7000-8000-000000000007: policy token: value is not in its landed form", t01: "column card_last4 of key 01890000-0000-7000-8000-000000000008: policy last4: the connector's tokenize transform could not apply the policy: the value has fewer digits than the policy keeps"}[q.Topic]
		if !strings.Contains(q.Reason, want) || q.ExitCode != 3 {
			t.Errorf("quarantine of %s: %q exit %d, want it to say %q, exit 3", q.Topic, q.Reason, q.ExitCode, want)
		}
		if strings.Contains(q.Reason, pan) || strings.Contains(q.Reason, "Holder 7") {
			t.Errorf("quarantine of %s holds the clear value", q.Topic)
		}
	}
	// no byte of the lake holds the clear card number or holder
	err = filepath.WalkDir(lake, func(p string, d os.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		b, err := os.ReadFile(p)
		if err == nil && (bytes.Contains(b, []byte(pan)) || bytes.Contains(b, []byte("Holder 7"))) {
			t.Errorf("%s holds the clear card value", p)
		}
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
	if got := ranges(landedFiles(t, lake, "payments")); got != "0-1,0-0" && got != "0-0,0-1" {
		t.Errorf("payments files %s, want s00 0-1 and s01 0-0 (cut before each poison event)", got)
	}
}

// TestPoisonEventAfterACrash: the consumer dies after landing the records before a
// poison event (manifest stored, offset not committed). The next run adopts that file
// instead of cutting the records again, then quarantines the event at its offset:
// nothing lands twice, nothing after the event lands.
func TestPoisonEventAfterACrash(t *testing.T) {
	stack := cdctest.Start(t)
	reg := loadRegistry(t)
	lake := t.TempDir()
	ctx := context.Background()
	topic := "shardflow.s00.public.payments"
	cust := customerOn(t, reg, "s00", 0)
	bad := paymentEvent(reg, "c", 99, cust, 1, 99)
	var env map[string]any
	_ = json.Unmarshal(bad, &env)
	env["after"].(map[string]any)["card_cvv"] = "987"
	bad, _ = json.Marshal(env)
	var vals [][]byte
	for i := 0; i < 3; i++ {
		vals = append(vals, paymentEvent(reg, "c", i, cust, 1, int64(i)))
	}
	produce(t, stack.Brokers, topic, append(vals, bad, paymentEvent(reg, "c", 3, cust, 1, 3))...)
	c := newConsumer(t, reg, stack.Brokers, lake)
	crash := errors.New("crash")
	c.Failpoint = func(step, key string) error {
		if step == "manifest" {
			return crash
		}
		return nil
	}
	if _, err := c.Run(ctx, true); !errors.Is(err, crash) {
		t.Fatalf("run with a crash after the prefix's manifest: %v", err)
	}
	if qs, _ := cdc.Quarantines(ctx, dir.Store{Root: lake}); len(qs) != 0 {
		t.Fatalf("quarantined %+v before the prefix was committed", qs)
	}
	c.Failpoint = nil
	sums, err := c.Run(ctx, true)
	if err != nil {
		t.Fatal(err)
	}
	if len(sums) != 1 || sums[0].Adopted != 1 || sums[0].Files != 0 || len(sums[0].Quarantined) != 1 || sums[0].Quarantined[0].Offset != 3 {
		t.Fatalf("after the crash: %+v, want the prefix file adopted and the event quarantined at offset 3", sums)
	}
	if got := ranges(landedFiles(t, lake, "payments")); got != "0-2" {
		t.Fatalf("files %s, want 0-2 only", got)
	}
}

// TestPausedShard: a paused shard's partitions stay at their committed offsets while
// the other shard lands; the run succeeds; after the resume every record of the paused
// shard lands, none twice.
func TestPausedShard(t *testing.T) {
	stack := cdctest.Start(t)
	reg := loadRegistry(t)
	lake := t.TempDir()
	store := dir.Store{Root: lake}
	ctx := context.Background()
	c00, c01 := customerOn(t, reg, "s00", 0), customerOn(t, reg, "s01", 0)
	for i := 0; i < 3; i++ {
		produce(t, stack.Brokers, "shardflow.s00.public.payments", paymentEvent(reg, "c", i, c00, 1, int64(i)))
		produce(t, stack.Brokers, "shardflow.s01.public.payments", paymentEvent(reg, "c", 10+i, c01, 1, int64(10+i)))
	}
	if _, err := pause.Set(ctx, store, pause.Pause{Shard: "s00", Reason: "maintenance", By: "test"}); err != nil {
		t.Fatal(err)
	}
	c := newConsumer(t, reg, stack.Brokers, lake)
	sums, err := c.Run(ctx, true)
	if err != nil {
		t.Fatalf("run with s00 paused: %v", err)
	}
	by := map[string]cdc.Summary{}
	for _, s := range sums {
		by[s.Shard] = s
	}
	if !by["s00"].Paused || by["s00"].Files != 0 || by["s01"].Rows != 3 {
		t.Fatalf("summaries %+v, want s00 paused with nothing landed and s01's 3 rows landed", sums)
	}
	if _, err := pause.Clear(ctx, store, "s00"); err != nil {
		t.Fatal(err)
	}
	sums, err = c.Run(ctx, true)
	if err != nil || len(sums) != 1 || sums[0].Shard != "s00" || sums[0].Rows != 3 {
		t.Fatalf("after resume: %+v %v, want s00's 3 rows landed (and s01 nothing again)", sums, err)
	}
}

func readRows(t *testing.T, pf *parquet.File) []map[string]any {
	t.Helper()
	var out []map[string]any
	cols := pf.Schema().Fields()
	for _, rg := range pf.RowGroups() {
		rr := rg.Rows()
		buf := make([]parquet.Row, 64)
		for {
			n, err := rr.ReadRows(buf)
			for _, row := range buf[:n] {
				m := map[string]any{}
				for _, v := range row {
					name := cols[v.Column()].Name()
					if v.IsNull() {
						m[name] = nil
						continue
					}
					switch v.Kind() {
					case parquet.ByteArray:
						m[name] = string(v.ByteArray())
					case parquet.Int64:
						m[name] = v.Int64()
					case parquet.Int32:
						m[name] = v.Int32()
					case parquet.Boolean:
						m[name] = v.Boolean()
					default:
						m[name] = v.String()
					}
				}
				out = append(out, m)
			}
			if err == io.EOF {
				break
			}
			if err != nil {
				t.Fatal(err)
			}
		}
		rr.Close()
	}
	return out
}

func redact(s string) string {
	if len(s) > 4 {
		return "…" + s[len(s)-4:]
	}
	return s
}

// flakyStore fails the first n Puts of data files, as an unreachable store would.
type flakyStore struct {
	objstore.Store
	mu sync.Mutex
	n  int
}

func (f *flakyStore) Put(ctx context.Context, key string, r io.Reader) error {
	f.mu.Lock()
	fail := f.n > 0 && strings.HasSuffix(key, landing.DataSuffix)
	if fail {
		f.n--
	}
	f.mu.Unlock()
	if fail {
		return errors.New("store unreachable")
	}
	return f.Store.Put(ctx, key, r)
}

func (f *flakyStore) left() int {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.n
}

// TestFollowRetries: in follow mode a retryable failure (the store unreachable) pauses
// the partition and retries it from the committed offset after a backoff, without a
// restart; the records land once, and stopping the consumer (ctx ends) is a clean
// exit.
func TestFollowRetries(t *testing.T) {
	stack := cdctest.Start(t)
	reg := loadRegistry(t)
	lake := t.TempDir()
	topic := "shardflow.s02.public.payments"
	cust := customerOn(t, reg, "s02", 0)
	var vals [][]byte
	for i := 0; i < 5; i++ {
		vals = append(vals, paymentEvent(reg, "c", i, cust, 1, int64(100+i)))
	}
	produce(t, stack.Brokers, topic, vals...)
	c := newConsumer(t, reg, stack.Brokers, lake)
	flaky := &flakyStore{Store: c.Store, n: 2}
	c.Store = flaky
	ctx, cancel := context.WithCancel(context.Background())
	type result struct {
		sums []cdc.Summary
		err  error
	}
	done := make(chan result, 1)
	go func() {
		s, err := c.Run(ctx, false)
		done <- result{s, err}
	}()
	deadline := time.Now().Add(2 * time.Minute)
	for flaky.left() > 0 || len(landedFiles(t, lake, "payments")) == 0 {
		if time.Now().After(deadline) {
			cancel()
			t.Fatalf("follow run never landed after the store came back (%d failures left)", flaky.left())
		}
		time.Sleep(200 * time.Millisecond)
	}
	produce(t, stack.Brokers, topic, paymentEvent(reg, "c", 5, cust, 1, 105))
	for ranges(landedFiles(t, lake, "payments")) != "0-4,5-5" {
		if time.Now().After(deadline) {
			cancel()
			t.Fatalf("files %s, want 0-4,5-5", ranges(landedFiles(t, lake, "payments")))
		}
		time.Sleep(200 * time.Millisecond)
	}
	cancel()
	res := <-done
	if res.err != nil {
		t.Fatalf("follow run stopped with %v, want a clean stop", res.err)
	}
	if len(res.sums) != 1 || res.sums[0].Files != 2 || res.sums[0].Rows != 6 {
		t.Fatalf("summaries %+v, want s02 with 2 files and 6 rows", res.sums)
	}
}

package cdc_test

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/parquet-go/parquet-go"

	"github.com/shopsphere/shardflow/internal/cdc/cdctest"
	"github.com/shopsphere/shardflow/internal/exitcode"
	"github.com/shopsphere/shardflow/internal/fence"
	"github.com/shopsphere/shardflow/internal/fleet/fleettest"
	"github.com/shopsphere/shardflow/internal/registry"
	"github.com/shopsphere/shardflow/internal/testenv"
)

// paymentAt is a payments change event of a row stamped at updated (the row's
// watermark) and committed at commit.
func paymentAt(reg *registry.Registry, op string, id int, cust int64, updated, commit time.Time) []byte {
	row := map[string]any{
		"payment_id": fmt.Sprintf("01890000-0000-7000-8000-%012d", id), "order_id": fmt.Sprintf("01890000-0000-7000-9000-%012d", id),
		"customer_id": cust, "bucket": reg.Bucket(cust), "kind": "charge", "status": "captured", "amount_cents": 1000 + id,
		"currency": "EUR", "card_number": fmt.Sprintf("4111111111%06d", id), "card_holder": "Holder", "card_last4": "0000",
		"deleted": false, "created_at": updated.Format(time.RFC3339Nano), "updated_at": updated.Format(time.RFC3339Nano), "row_version": 1,
	}
	row = asTransformed(row)
	env := map[string]any{"op": op, "source": map[string]any{"lsn": 100 + id, "txId": 1000 + id, "ts_us": commit.UnixMicro(), "table": "payments"}}
	if op == "d" {
		env["before"] = row
	} else {
		env["after"] = row
	}
	b, _ := json.Marshal(env)
	return b
}

// A pending move's changes are judged, in tokenize cdc, by each shard's own fence
// rows: on the source, what is stamped before its marker lands and nothing after it
// (its cleanup deletes included); on the target, nothing before its marker (copies)
// and everything from it. The target's clock ran behind the source's, so its marker is
// the newest copied stamp + 1µs (cutover's greatest()), just above the copies and
// whatever its own clock says. Without the
// shards' DSNs the consumer refuses those shards' files (exit 2), it never guesses.
func TestPendingMoveJudgedByTheShardsFences(t *testing.T) {
	src, err := os.ReadFile(filepath.Join(testenv.Root(t), "shards.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	_, reg, err := registry.DeclareMove(src, registry.Move{Epoch: 2, Buckets: []registry.Range{{Lo: 1024, Hi: 1279}}, From: "s01", To: "s02"}, nil)
	if err != nil {
		t.Fatal(err)
	}
	f := fleettest.Start(t, reg)
	stack := cdctest.Start(t)
	ctx := context.Background()
	srcMark := time.Now().UTC().Add(-time.Hour).Truncate(time.Microsecond)
	dstMark := srcMark // the newest copy is stamped srcMark - 1µs
	for shard, q := range map[string]string{
		"s01": `INSERT INTO shardflow_bucket_fence (epoch, role, bucket_lo, bucket_hi, state, peer, marker_at, marker_lsn) VALUES (2, 'from', 1024, 1279, 'moved', 's02', $1, '0/10')`,
		"s02": `INSERT INTO shardflow_bucket_fence (epoch, role, bucket_lo, bucket_hi, state, peer, marker_at, marker_lsn) VALUES (2, 'to', 1024, 1279, 'owned', 's01', $1, '0/20')`,
	} {
		at := srcMark
		if shard == "s02" {
			at = dstMark
		}
		s, _ := f.Shard(shard)
		c, err := pgx.Connect(ctx, s.AdminDSN)
		if err != nil {
			t.Fatal(err)
		}
		_, err = c.Exec(ctx, q, at)
		c.Close(ctx)
		if err != nil {
			t.Fatal(err)
		}
	}
	var cust int64
	for c := int64(1); ; c++ {
		if b := reg.Bucket(c); b >= 1024 && b <= 1279 {
			cust = c
			break
		}
	}
	us := time.Microsecond
	produce(t, stack.Brokers, "shardflow.s01.public.payments",
		paymentAt(reg, "c", 1, cust, srcMark.Add(-2*time.Second), srcMark.Add(-2*time.Second)), // lands
		paymentAt(reg, "u", 2, cust, srcMark.Add(-us), srcMark.Add(-us)),                       // lands
		paymentAt(reg, "c", 3, cust, srcMark, srcMark),                                         // past the fence: not
		paymentAt(reg, "d", 1, cust, srcMark.Add(-2*time.Second), srcMark.Add(time.Minute)),    // the cleanup's delete: not
	)
	produce(t, stack.Brokers, "shardflow.s02.public.payments",
		paymentAt(reg, "c", 2, cust, srcMark.Add(-us), dstMark.Add(-time.Second)),        // a copy, s01's stamp: not
		paymentAt(reg, "c", 4, cust, dstMark, dstMark),                                   // lands
		paymentAt(reg, "u", 5, cust, dstMark.Add(time.Second), dstMark.Add(time.Second)), // lands
	)

	// without the shards' DSNs: refused
	lake := t.TempDir()
	c := newConsumer(t, reg, stack.Brokers, lake)
	sums, err := c.Run(ctx, true)
	if exitcode.Of(err) != exitcode.Usage || len(landedFiles(t, lake, "payments")) != 0 {
		t.Fatalf("without fences: %v (exit %d), %+v", err, exitcode.Of(err), sums)
	}

	views := &fence.Views{Registry: reg, DSN: func(id string) (string, error) {
		s, _ := f.Shard(id)
		return s.ExtractDSN, nil
	}}
	defer views.Close()
	c = newConsumer(t, reg, stack.Brokers, lake)
	c.Group += "-fenced"
	c.Fences = views
	if _, err := c.Run(ctx, true); err != nil {
		t.Fatal(err)
	}
	landed := map[string][]string{}
	for _, fr := range landedFiles(t, lake, "payments") {
		fh, err := os.Open(filepath.Join(lake, fr.key))
		if err != nil {
			t.Fatal(err)
		}
		st, _ := fh.Stat()
		pf, err := parquet.OpenFile(fh, st.Size())
		if err != nil {
			t.Fatal(err)
		}
		for _, r := range readRows(t, pf) {
			landed[r["_shard"].(string)] = append(landed[r["_shard"].(string)], r["payment_id"].(string)[len("01890000-0000-7000-8000-"):])
		}
		fh.Close()
	}
	if fmt.Sprint(landed["s01"]) != "[000000000001 000000000002]" || fmt.Sprint(landed["s02"]) != "[000000000004 000000000005]" {
		t.Errorf("landed s01 %v, s02 %v; want s01 [1 2] (before its marker), s02 [4 5] (from its marker)", landed["s01"], landed["s02"])
	}
}

package extract

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/shopsphere/shardflow/internal/exitcode"
	"github.com/shopsphere/shardflow/internal/landing"
	"github.com/shopsphere/shardflow/internal/registry"
	"github.com/shopsphere/shardflow/internal/window"
)

// TestSchemaDrift: a declared column dropped (or renamed) and a type change refuse the
// table, each named with its shard, table and column; an undeclared column does not
// refuse it, it is only reported.
func TestSchemaDrift(t *testing.T) {
	ctx := context.Background()
	reg := testRegistry(t, time.Hour, 5*time.Minute)
	sh := startShards(t, reg)["s00"]
	admin := connect(t, sh.AdminDSN)
	conn := connect(t, sh.ExtractDSN)
	for _, tb := range reg.Tables {
		s, err := CheckSchema(ctx, conn, "s00", tb)
		if err != nil || s.Err() != nil || len(s.Undeclared)+len(s.Absent) > 0 {
			t.Fatalf("fresh shard: %+v, %v", s, err)
		}
	}
	for _, stmt := range []string{
		"ALTER TABLE payments ADD COLUMN card_pin text",
		"ALTER TABLE payments DROP COLUMN card_holder",
		"ALTER TABLE payments ALTER COLUMN amount_cents TYPE numeric",
		"ALTER TABLE orders RENAME COLUMN region TO area",
	} {
		if _, err := admin.Exec(ctx, stmt); err != nil {
			t.Fatal(err)
		}
	}
	tb, _ := reg.Table("payments")
	s, err := CheckSchema(ctx, conn, "s00", tb)
	if err != nil {
		t.Fatal(err)
	}
	err = s.Err()
	var de *DriftError
	if !errors.As(err, &de) || !errors.Is(err, ErrSchemaDrift) {
		t.Fatalf("CheckSchema = %v, want a DriftError", err)
	}
	msg := err.Error()
	for _, want := range []string{"shard s00 table payments", "column card_holder: missing on the shard (expected text)",
		"column amount_cents: type changed (shards.yaml bigint, shard numeric)"} {
		if !strings.Contains(msg, want) {
			t.Errorf("drift error %q does not say %q", msg, want)
		}
	}
	if strings.Contains(msg, "card_pin") || len(s.Undeclared) != 1 || s.Undeclared[0].Column != "card_pin" {
		t.Errorf("the undeclared card_pin: refused in %q, or reported as %+v", msg, s.Undeclared)
	}

	// a rename is a drop and an undeclared column: refused, by the old name
	ex, _ := newTestExtractor(t, reg, conn)
	lag := -2 * time.Hour
	ex.SafetyLag = &lag
	now := time.Now().UTC().Truncate(time.Hour)
	_, err = ex.Run(ctx, Job{Shard: "s00", Table: "orders", Window: window.Window{Start: now, End: now.Add(time.Hour)}})
	if exitcode.Of(err) != exitcode.Drift || !strings.Contains(err.Error(), "shard s00 table orders") || !strings.Contains(err.Error(), "column region: missing on the shard") {
		t.Fatalf("renamed column: %v (exit %d), want exit 4 naming shard s00, table orders, column region", err, exitcode.Of(err))
	}
}

// TestRollingColumn: a column declared adding: true lands NULL, named in each row's
// _absent_columns, from a shard that lacks it, and its values once the shard has it;
// a column the shard has and shards.yaml does not declare never lands (not in the
// file's columns, nor its bytes) and is reported with shard, table and column.
func TestRollingColumn(t *testing.T) {
	ctx := context.Background()
	reg := testRegistry(t, time.Hour, 5*time.Minute)
	for i := range reg.Tables {
		if reg.Tables[i].Name == "orders" {
			reg.Tables[i].Columns = append(reg.Tables[i].Columns, registry.Column{Name: "gift_note", Type: "text", Adding: true})
		}
	}
	sh := startShards(t, reg)["s00"]
	admin := connect(t, sh.AdminDSN)
	cust := customerOf(t, reg, "s00")
	// both rows of the test go in the current hour's window
	if left := time.Until(time.Now().Truncate(time.Hour).Add(time.Hour)); left < 15*time.Second {
		time.Sleep(left + time.Second)
	}
	before := insertOrder(t, ctx, admin, reg, cust, "placed")

	var logs bytes.Buffer
	ex, lake := newTestExtractor(t, reg, connect(t, sh.ExtractDSN))
	ex.Logger = slog.New(slog.NewTextHandler(&logs, nil))
	lag := -2 * time.Hour
	ex.SafetyLag = &lag
	hour := time.Now().UTC().Truncate(time.Hour)
	job := Job{Shard: "s00", Table: "orders", Window: window.Window{Start: hour, End: hour.Add(time.Hour)}}
	res, err := ex.Run(ctx, job)
	if err != nil {
		t.Fatalf("a shard without the rolling-out column: %v", err)
	}
	if got := lake.column(t, res.DataKey, "gift_note"); len(got) != 1 || got[0] != "" {
		t.Fatalf("gift_note before the ALTER: %q, want one NULL", got)
	}
	if got := lake.column(t, res.DataKey, landing.ColAbsent); len(got) != 1 || got[0] != "gift_note" {
		t.Fatalf("_absent_columns before the ALTER: %q, want gift_note", got)
	}
	if fmt.Sprint(res.Manifest.AbsentColumns) != "[gift_note]" {
		t.Errorf("manifest absent_columns %v", res.Manifest.AbsentColumns)
	}

	// the shard gets the column, and one it does not declare; a card number goes in it
	const pan = "4111111111111111"
	for _, stmt := range []string{
		"ALTER TABLE orders ADD COLUMN gift_note text",
		"ALTER TABLE orders ADD COLUMN card_pan text",
	} {
		if _, err := admin.Exec(ctx, stmt); err != nil {
			t.Fatal(err)
		}
	}
	after := insertOrder(t, ctx, admin, reg, cust, "placed")
	if _, err := admin.Exec(ctx, "UPDATE orders SET gift_note = 'wrap it', card_pan = $2 WHERE order_id = $1", after, pan); err != nil {
		t.Fatal(err)
	}
	res, err = ex.Run(ctx, job)
	if err != nil {
		t.Fatalf("a shard with an undeclared column: %v", err)
	}
	ids := lake.column(t, res.DataKey, "order_id")
	if len(ids) != 2 {
		t.Fatalf("the window has %d rows, want 2", len(ids))
	}
	notes := lake.column(t, res.DataKey, "gift_note")
	absent := lake.column(t, res.DataKey, landing.ColAbsent)
	for i, id := range ids {
		want := map[string]string{before: "", after: "wrap it"}[id]
		if notes[i] != want || absent[i] != "" {
			t.Errorf("order %s: gift_note %q, _absent_columns %q; want %q and NULL (the shard has the column now)", id, notes[i], absent[i], want)
		}
	}
	data, err := os.ReadFile(filepath.Join(lake.Root, res.DataKey))
	if err != nil {
		t.Fatal(err)
	}
	if bytes.Contains(data, []byte(pan)) || bytes.Contains(data, []byte("card_pan")) {
		t.Fatal("the undeclared column card_pan landed")
	}
	for _, c := range res.Manifest.Columns {
		if c.Name == "card_pan" {
			t.Fatal("the manifest lists the undeclared column card_pan")
		}
	}
	if len(res.Schema.Undeclared) != 1 || res.Schema.Undeclared[0].Column != "card_pan" {
		t.Errorf("undeclared columns reported: %+v", res.Schema.Undeclared)
	}
	line := logs.String()
	if !strings.Contains(line, "level=WARN") || !strings.Contains(line, "shard=s00") || !strings.Contains(line, "table=orders") || !strings.Contains(line, "column=card_pan") || strings.Contains(line, pan) {
		t.Errorf("no warning naming shard, table and column (or one with the value):\n%s", line)
	}
}

// TestWrongBucketFailsLoudly: a row whose bucket column is not registry.Bucket(customer_id)
// stops the extract with exit 3 naming the key (ownership cannot be decided for it), and
// nothing lands.
func TestWrongBucketFailsLoudly(t *testing.T) {
	ctx := context.Background()
	reg := testRegistry(t, time.Hour, 5*time.Minute)
	sh := startShards(t, reg)["s00"]
	admin := connect(t, sh.AdminDSN)
	cust := customerOf(t, reg, "s00")
	wrong := (reg.Bucket(cust) + 1) % 1024 // still a bucket s00 owns
	var id string
	if err := admin.QueryRow(ctx, `INSERT INTO orders (order_id, customer_id, bucket, status, currency, region, total_cents)
		VALUES (gen_random_uuid(), $1, $2, 'placed', 'EUR', 'eu', 1) RETURNING order_id::text`, cust, wrong).Scan(&id); err != nil {
		t.Fatal(err)
	}
	var at time.Time
	if err := admin.QueryRow(ctx, "SELECT updated_at FROM orders WHERE order_id = $1", id).Scan(&at); err != nil {
		t.Fatal(err)
	}
	ex, lake := newTestExtractor(t, reg, connect(t, sh.ExtractDSN))
	lag := time.Duration(-2 * time.Hour) // the window is the current hour: let it count as closed
	ex.SafetyLag = &lag
	w := window.Window{Start: at.UTC().Truncate(time.Hour), End: at.UTC().Truncate(time.Hour).Add(time.Hour)}
	_, err := ex.Run(ctx, Job{Shard: "s00", Table: "orders", Window: w})
	if !errors.Is(err, ErrWrongBucket) || exitcode.Of(err) != exitcode.CheckFail || !strings.Contains(err.Error(), id) {
		t.Fatalf("Run = %v (exit %d), want ErrWrongBucket with exit 3 naming %s", err, exitcode.Of(err), id)
	}
	if lake.has(t, w, "s00", "orders") {
		t.Fatal("a window with a wrong bucket landed")
	}
}

package extract

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"
)

func TestWindowAligned(t *testing.T) {
	h := time.Hour
	t0 := time.Date(2026, 11, 24, 10, 0, 0, 0, time.UTC)
	if err := (Window{t0, t0.Add(h)}).Aligned(h); err != nil {
		t.Fatal(err)
	}
	for _, w := range []Window{{t0, t0.Add(2 * h)}, {t0.Add(time.Minute), t0.Add(h + time.Minute)}, {t0, t0}} {
		if err := w.Aligned(h); err == nil {
			t.Errorf("%s: aligned, want an error", w)
		}
	}
	if got, err := ParseTime("2026-11-24T10:00Z"); err != nil || !got.Equal(t0) {
		t.Fatalf("ParseTime = %v, %v", got, err)
	}
	if got := (Window{t0, t0.Add(h)}).String(); got != "2026-11-24T10:00Z/2026-11-24T11:00Z" {
		t.Fatalf("String = %s", got)
	}
}

// TestSchemaDrift: a declared column missing, a type change and an undeclared column
// are each reported with the column, expected and found type.
func TestSchemaDrift(t *testing.T) {
	ctx := context.Background()
	reg := testRegistry(t, time.Hour, 5*time.Minute)
	sh := startShards(t, reg)["s00"]
	admin := connect(t, sh.AdminDSN)
	conn := connect(t, sh.ExtractDSN)
	for _, tb := range reg.Tables {
		if err := CheckSchema(ctx, conn, "s00", tb); err != nil {
			t.Fatalf("fresh shard: %v", err)
		}
	}
	for _, stmt := range []string{
		"ALTER TABLE payments ADD COLUMN card_pin text",
		"ALTER TABLE payments DROP COLUMN card_holder",
		"ALTER TABLE payments ALTER COLUMN amount_cents TYPE numeric",
	} {
		if _, err := admin.Exec(ctx, stmt); err != nil {
			t.Fatal(err)
		}
	}
	tb, _ := reg.Table("payments")
	err := CheckSchema(ctx, conn, "s00", tb)
	var de *DriftError
	if !errors.As(err, &de) || !errors.Is(err, ErrSchemaDrift) {
		t.Fatalf("CheckSchema = %v, want a DriftError", err)
	}
	msg := err.Error()
	for _, want := range []string{"shard s00 table payments", "column card_pin: not declared in shards.yaml (found text)",
		"column card_holder: missing on the shard (expected text)", "column amount_cents: type mismatch (expected bigint, found numeric)"} {
		if !strings.Contains(msg, want) {
			t.Errorf("drift error %q does not say %q", msg, want)
		}
	}
	tb, _ = reg.Table("orders")
	if err := CheckSchema(ctx, conn, "s00", tb); err != nil {
		t.Fatalf("orders did not change: %v", err)
	}
}

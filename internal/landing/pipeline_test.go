package landing_test

import (
	"errors"
	"fmt"
	"io"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/shopsphere/shardflow/internal/exitcode"
	"github.com/shopsphere/shardflow/internal/landing"
	"github.com/shopsphere/shardflow/internal/registry"
	"github.com/shopsphere/shardflow/internal/testenv"
	"github.com/shopsphere/shardflow/internal/tokenize"
)

// rowsWriter keeps copies of the rows written.
type rowsWriter struct{ rows [][]any }

func (w *rowsWriter) Write(row []any) error {
	w.rows = append(w.rows, append([]any(nil), row...))
	return nil
}
func (w *rowsWriter) Close() error { return nil }

// fakeTokenizer records its calls; "bad" fails.
type fakeTokenizer struct{ calls []string }

func (t *fakeTokenizer) Apply(c registry.Column, v string) (string, error) {
	t.calls = append(t.calls, c.Name)
	if v == "bad" {
		return "", errors.New("cannot tokenize")
	}
	return "tok(" + c.Name + ")", nil
}
func (t *fakeTokenizer) KeyID() string { return "k1" }

// ownedUntil: the shard owns every bucket before cut, and reports epoch 7.
type ownedUntil struct {
	cut  time.Time
	asks []time.Time
}

func (o *ownedUntil) Owned(_ string, _ int, at time.Time) (int, bool) {
	o.asks = append(o.asks, at)
	return 7, at.Before(o.cut)
}

func TestPipeline(t *testing.T) {
	reg, err := registry.Load(filepath.Join(testenv.Root(t), "shards.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	pay, _ := reg.Table("payments")
	tok := &fakeTokenizer{}
	var w rowsWriter
	p, err := landing.NewPipeline(reg, pay, tok, func(io.Writer, []landing.Column) (landing.FileWriter, error) { return &w, nil })
	if err != nil {
		t.Fatal(err)
	}
	if len(p.Columns()) != len(pay.Landed())+len(landing.LineageColumns) {
		t.Fatalf("%d columns", len(p.Columns()))
	}
	t0 := time.Date(2026, 3, 10, 10, 0, 0, 0, time.UTC)
	own := &ownedUntil{cut: t0.Add(time.Hour)}
	p.Ownership = own
	cust := int64(42)
	// payment_id order_id customer_id bucket kind status amount_cents currency card_number card_holder card_last4 deleted created_at updated_at row_version
	src := func(id string, wm time.Time, card any) []any {
		return []any{id, "o", cust, int32(reg.Bucket(cust)), "charge", "ok", int64(100), "EUR", card, nil, "4111111111111111", false, t0, wm, int64(2)}
	}
	f, err := p.Open(io.Discard, landing.Lineage{Shard: "s00", Source: landing.CDC}, nil)
	if err != nil {
		t.Fatal(err)
	}
	if _, ok := f.Epoch(); ok {
		t.Fatal("Epoch of an empty file")
	}
	commit := t0.Add(2 * time.Hour)
	row := src("p1", t0, "4111111111111111")
	noWM := src("p4", t0, nil)
	noWM[13] = nil
	steps := []struct {
		row []any
		ch  landing.Change
	}{
		{row, landing.Change{Op: "u", CommitTS: commit, LSN: 5, TxID: 9}},            // owned at updated_at
		{src("p2", t0, nil), landing.Change{Op: "d", CommitTS: commit}},              // a delete counts at its commit: unowned
		{src("p3", t0.Add(2*time.Hour), nil), landing.Change{Op: "c", CommitTS: t0}}, // unowned at updated_at
		{noWM, landing.Change{Op: "u", CommitTS: t0}},                                // no watermark: the commit time decides
	}
	for i, s := range steps {
		if err := f.Add(s.row, s.ch); err != nil {
			t.Fatalf("row %d: %v", i, err)
		}
	}
	if row[8] != "4111111111111111" {
		t.Error("Add changed the caller's row")
	}
	if err := f.Close(); err != nil {
		t.Fatal(err)
	}
	wantAsks := []time.Time{t0, commit, t0.Add(2 * time.Hour), t0}
	if fmt.Sprint(own.asks) != fmt.Sprint(wantAsks) {
		t.Errorf("ownership asked at %v, want %v", own.asks, wantAsks)
	}
	if f.Unowned() != 2 || len(w.rows) != 2 || f.Checksum().Rows() != 2 {
		t.Fatalf("unowned %d, written %d, checksum rows %d: want 2, 2, 2", f.Unowned(), len(w.rows), f.Checksum().Rows())
	}
	if e, ok := f.Epoch(); !ok || e != 7 {
		t.Errorf("Epoch = %d, %v", e, ok)
	}
	// tokenized: card_number and card_last4 of owned rows only, never NULL card_holder
	if got := strings.Join(tok.calls, ","); got != "card_number,card_last4,card_last4" {
		t.Errorf("tokenizer called for %s", got)
	}
	got := w.rows[0]
	if got[8] != "tok(card_number)" || got[9] != nil || got[10] != "tok(card_last4)" {
		t.Errorf("PCI columns landed as %v %v %v", got[8], got[9], got[10])
	}
	var sum landing.Checksum
	sum.Add(landing.KeyText("p1"), 2)
	sum.Add(landing.KeyText("p4"), 2)
	if f.Checksum().String() != sum.String() {
		t.Errorf("checksum %s, want %s", f.Checksum(), sum.String())
	}
	lin := map[string]any{}
	for i, c := range landing.LineageColumns {
		lin[c.Name] = got[len(pay.Landed())+i]
	}
	want := map[string]any{landing.ColShard: "s00", landing.ColSource: "cdc", landing.ColOp: "u", landing.ColRegistryEpoch: int32(7),
		landing.ColWindowStart: nil, landing.ColWindowEnd: nil, landing.ColCommitTS: commit,
		landing.ColLSN: int64(5), landing.ColTxID: int64(9), landing.ColAbsent: nil}
	if fmt.Sprint(lin) != fmt.Sprint(want) {
		t.Errorf("lineage %v, want %v", lin, want)
	}

	// a wrong bucket stops the file with exit 3 and names the key; a tokenizer error
	// names the column and key, not the value
	f, _ = p.Open(io.Discard, landing.Lineage{Shard: "s00", Source: landing.Batch}, nil)
	bad := src("p5", t0, nil)
	bad[3] = int32(reg.Bucket(cust) + 1)
	if err := f.Add(bad, landing.Change{Op: "r", CommitTS: t0}); !errors.Is(err, landing.ErrWrongBucket) || exitcode.Of(err) != exitcode.CheckFail || !strings.Contains(err.Error(), "key p5") {
		t.Errorf("wrong bucket: %v (exit %d)", err, exitcode.Of(err))
	}
	if err := f.Add(src("p6", t0, "bad"), landing.Change{Op: "r", CommitTS: t0}); err == nil || !strings.Contains(err.Error(), "card_number of key p6") || strings.Contains(err.Error(), "bad") {
		t.Errorf("tokenizer error: %v", err)
	}
}

// TestLineagePut: batch files carry the window and no WAL position, CDC files the
// reverse, in LineageColumns order.
func TestLineagePut(t *testing.T) {
	at := time.Date(2026, 3, 10, 10, 0, 0, 0, time.UTC)
	l := landing.Lineage{Shard: "s01", Source: landing.Batch, RegistryEpoch: 1, WindowStart: at, WindowEnd: at.Add(time.Hour),
		Change: landing.Change{Op: "r", CommitTS: at, LSN: 3, TxID: 4}}
	dst := make([]any, len(landing.LineageColumns))
	l.Put(dst)
	want := []any{"s01", "batch", "r", int32(1), at, at.Add(time.Hour), at, nil, nil, nil}
	if fmt.Sprint(dst) != fmt.Sprint(want) {
		t.Errorf("batch lineage %v, want %v", dst, want)
	}
	l.Source = landing.CDC
	l.Put(dst)
	want = []any{"s01", "cdc", "r", int32(1), nil, nil, at, int64(3), int64(4), nil}
	if fmt.Sprint(dst) != fmt.Sprint(want) {
		t.Errorf("cdc lineage %v, want %v", dst, want)
	}
	// a row whose shard lacked a rolling-out column names it; one that had them all is NULL
	l.Absent = "gift_note"
	l.Put(dst)
	if dst[9] != "gift_note" {
		t.Errorf("_absent_columns = %v, want gift_note", dst[9])
	}
}

// TestKeyIDsAcrossARotation: a CDC file whose tokens were made under two key ids (events
// published before and after a rotation, decision 0014) records both, sorted; a file
// without tokens records none.
func TestKeyIDsAcrossARotation(t *testing.T) {
	reg, err := registry.Load(filepath.Join(testenv.Root(t), "shards.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	pay, _ := reg.Table("payments")
	var w rowsWriter
	p, err := landing.NewPipeline(reg, pay, tokenize.Verifier{}, func(io.Writer, []landing.Column) (landing.FileWriter, error) { return &w, nil })
	if err != nil {
		t.Fatal(err)
	}
	t0 := time.Date(2026, 3, 10, 10, 0, 0, 0, time.UTC)
	p.Ownership = &ownedUntil{cut: t0.Add(time.Hour)}
	cust := int64(42)
	row := func(id, card string) []any {
		return []any{id, "o", cust, int32(reg.Bucket(cust)), "charge", "ok", int64(100), "EUR", card, nil, "1111", false, t0, t0, int64(2)}
	}
	f, err := p.Open(io.Discard, landing.Lineage{Shard: "s00", Source: landing.CDC}, nil)
	if err != nil {
		t.Fatal(err)
	}
	if ids := f.KeyIDs(); len(ids) != 0 {
		t.Fatalf("KeyIDs of an empty file: %v", ids)
	}
	k1, _ := tokenize.New("k1", []byte(strings.Repeat("a", 32)))
	k2, _ := tokenize.New("k2", []byte(strings.Repeat("b", 32)))
	for i, tk := range []*tokenize.Tokenizer{k2, k1, k2} {
		if err := f.Add(row(fmt.Sprintf("p%d", i), tk.Token("card_number", "4111111111111111")), landing.Change{Op: "c", CommitTS: t0}); err != nil {
			t.Fatal(err)
		}
	}
	if ids := strings.Join(f.KeyIDs(), ","); ids != "k1,k2" {
		t.Errorf("KeyIDs %q, want k1,k2", ids)
	}
}

package main

import (
	"bytes"
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/shopsphere/shardflow/internal/dq"
	"github.com/shopsphere/shardflow/internal/extract/extracttest"
	"github.com/shopsphere/shardflow/internal/landing"
	"github.com/shopsphere/shardflow/internal/objstore/dir"
	"github.com/shopsphere/shardflow/internal/registry"
	"github.com/shopsphere/shardflow/internal/tokenize"
	"github.com/shopsphere/shardflow/internal/window"
	"github.com/shopsphere/shardflow/internal/workload"
)

// TestSchemaDriftOnOneShard: invariant 7. A declared column dropped on one shard fails
// that shard's extract with exit 4 and a message naming shard, table and column; a
// column added on another shard without a declaration lands that shard's window without
// it (never read: no byte of it in the file) and a warning names it; the other shards
// land the same window.
func TestSchemaDriftOnOneShard(t *testing.T) {
	ctx := context.Background()
	e := newEnv(t, "1000")
	w := windowAt("2026-03-10T10:00Z", e.reg.Extract.Window.Duration)
	for _, s := range e.fleet.Shards {
		custs := extracttest.CustomersOwnedBy(e.reg, s.ID, w.Start, 10, 1)
		if err := extracttest.Fill(ctx, e.admin(s.ID), e.reg, extracttest.Spec{Table: "payments", Rows: 200, From: w.Start, To: w.End, Customers: custs, Seed: s.ID}); err != nil {
			t.Fatal(err)
		}
	}
	// s01 gains a column nobody declared, holding a value in every row (the UPDATE
	// keeps updated_at: the stamp trigger is disabled for it); s02 drops a declared one
	const pin = "PIN-7391"
	for _, stmt := range []string{"ALTER TABLE payments ADD COLUMN card_pin text", "ALTER TABLE payments DISABLE TRIGGER payments_stamp",
		"UPDATE payments SET card_pin = '" + pin + "'", "ALTER TABLE payments ENABLE TRIGGER payments_stamp"} {
		if _, err := e.admin("s01").Exec(ctx, stmt); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := e.admin("s02").Exec(ctx, "ALTER TABLE payments DROP COLUMN card_holder"); err != nil {
		t.Fatal(err)
	}
	for _, s := range e.fleet.Shards {
		code, out := e.extract("--shard", s.ID, "--table", "payments", "--window", "2026-03-10T10:00Z")
		_, man := e.landed("payments", s.ID, w)
		switch s.ID {
		case "s01":
			data, err := os.ReadFile(filepath.Join(e.lake, landing.BatchKey("payments", "s01", w.Start, w.End)))
			if code != 0 || !man || err != nil || bytes.Contains(data, []byte(pin)) || bytes.Contains(data, []byte("card_pin")) {
				t.Errorf("s01 with an undeclared column: exit %d, landed %v (%v), or the column in the file:\n%s", code, man, err, out)
			}
			if !strings.Contains(out, "level=WARN") || !strings.Contains(out, "shard=s01 table=payments") || !strings.Contains(out, "column=card_pin") || strings.Contains(out, pin) {
				t.Errorf("s01: no warning naming shard, table and column (or one with the value):\n%s", out)
			}
		case "s02":
			if code != 4 || !strings.Contains(out, "shard s02 table payments: schema drift: column card_holder: missing on the shard (expected text)") || man {
				t.Errorf("s02 with a dropped column: exit %d, landed %v:\n%s", code, man, out)
			}
		default:
			if code != 0 || !man {
				t.Errorf("%s: exit %d, landed %v:\n%s", s.ID, code, man, out)
			}
		}
	}
	// --dry-run reports both, and writes nothing
	code, out := e.extract("--shard", "s02", "--table", "payments", "--window", "2026-03-10T10:00Z", "--dry-run")
	if code != 0 || !strings.Contains(out, "DRIFT") || !strings.Contains(out, "card_holder") {
		t.Errorf("dry run on s02: exit %d:\n%s", code, out)
	}
	code, out = e.extract("--shard", "s01", "--table", "payments", "--window", "2026-03-10T10:00Z", "--dry-run")
	if code != 0 || !strings.Contains(out, "schema:        lands, with differences:") || !strings.Contains(out, "WARNING column card_pin (text): on the shard but not declared") {
		t.Errorf("dry run on s01: exit %d:\n%s", code, out)
	}
	code, out = e.extract("--shard", "s00", "--table", "payments", "--window", "2026-03-10T10:00Z", "--dry-run")
	for _, want := range []string{"schema:        matches shards.yaml", "closed:        yes", "never read:    card_expiry, card_cvv", "query plan:    Limit > "} {
		if code != 0 || !strings.Contains(out, want) {
			t.Errorf("dry run on s00: exit %d, want %q in:\n%s", code, want, out)
		}
	}
	// usage errors: misaligned window, unknown shard
	if code, out := e.extract("--shard", "s00", "--table", "payments", "--window-start", "2026-03-10T10:30Z", "--window-end", "2026-03-10T11:30Z"); code != 2 {
		t.Errorf("misaligned window: exit %d:\n%s", code, out)
	}
	if code, out := e.extract("--shard", "s99", "--table", "payments", "--window", "2026-03-10T10:00Z"); code != 2 {
		t.Errorf("unknown shard: exit %d:\n%s", code, out)
	}
}

// testPANs are Luhn-valid test card numbers written on purpose on two shards.
var testPANs = []string{"4111111111111111", "5555555555554444", "378282246310005", "4012888888881881"}

// TestPCINeverLands: invariant 6. Payments written by the workload generator (random
// test PANs, holders, expiries, CVVs) and by a fixture (the same PANs on two shards)
// are extracted from every shard, twice. No landed byte and no warehouse value holds a
// card number the shards hold; card_expiry and card_cvv are absent from files and
// warehouse; the token of a PAN is the same on every shard and in every run.
func TestPCINeverLands(t *testing.T) {
	ctx := context.Background()
	e := newEnv(t, "1000", "1m", "0s")
	size := e.reg.Extract.Window.Duration
	fixture := windowAt("2026-03-10T10:00Z", size)
	for _, sh := range []string{"s00", "s01"} {
		custs := extracttest.CustomersOwnedBy(e.reg, sh, fixture.Start, 10, 1)
		if err := extracttest.Fill(ctx, e.admin(sh), e.reg, extracttest.Spec{Table: "payments", Rows: 400, From: fixture.Start, To: fixture.End, Customers: custs, Seed: sh, Cards: testPANs}); err != nil {
			t.Fatal(err)
		}
	}
	// live traffic from the workload generator, in the current window
	dsns := map[string]string{}
	for _, s := range e.fleet.Shards {
		dsns[s.ID] = s.AdminDSN
	}
	start := time.Now().UTC()
	if _, err := workload.Run(ctx, workload.Config{Registry: e.reg, DSNs: dsns, Seed: 7, Orders: 300}); err != nil {
		t.Fatal(err)
	}
	end := time.Now().UTC()
	// every PAN the shards hold, as the generator wrote them
	pans := map[string]bool{}
	for _, s := range e.fleet.Shards {
		rows, err := e.admin(s.ID).Query(ctx, "SELECT DISTINCT card_number FROM payments WHERE card_number IS NOT NULL")
		if err != nil {
			t.Fatal(err)
		}
		for rows.Next() {
			var p string
			if err := rows.Scan(&p); err != nil {
				t.Fatal(err)
			}
			pans[p] = true
		}
		rows.Close()
	}
	if len(pans) < 50 {
		t.Fatalf("only %d distinct PANs on the shards: the fixture is wrong", len(pans))
	}

	// the workload's 1-minute windows must close (safety lag 0 in this registry)
	live := []window.Window{}
	for w0 := start.Truncate(size); w0.Before(end); w0 = w0.Add(size) {
		live = append(live, window.Window{Start: w0, End: w0.Add(size)})
	}
	waitPast(t, live[len(live)-1].End)

	tokens := map[string]map[string]bool{} // run → token set of the fixture PANs per shard
	for run := 0; run < 2; run++ {
		for _, s := range e.fleet.Shards {
			for _, w := range append([]window.Window{fixture}, live...) {
				code, out := e.extract("--shard", s.ID, "--table", "payments", "--window", w.Start.Format(time.RFC3339))
				for p := range pans {
					if strings.Contains(out, p) {
						t.Fatalf("extract output holds a card number")
					}
				}
				if code != 0 {
					t.Fatalf("%s %s: exit %d:\n%s", s.ID, w, code, out)
				}
			}
		}
		// every landed byte: raw bytes of data files and manifests, and decoded strings
		store := dir.Store{Root: e.lake}
		keys, err := store.List(ctx, landing.Prefix)
		if err != nil || len(keys) == 0 {
			t.Fatalf("landed keys: %v %v", keys, err)
		}
		for _, k := range keys {
			raw, err := os.ReadFile(filepath.Join(e.lake, k))
			if err != nil {
				t.Fatal(err)
			}
			for p := range pans {
				if bytes.Contains(raw, []byte(p)) {
					t.Errorf("%s: raw bytes contain a card number", k)
				}
			}
			if bytes.Contains(raw, []byte("card_cvv")) || bytes.Contains(raw, []byte("card_expiry")) {
				t.Errorf("%s: names a drop-policy column", k)
			}
			if strings.HasSuffix(k, landing.DataSuffix) {
				h, err := dq.ScanFile(k, raw)
				if err != nil {
					t.Fatal(err)
				}
				if h.Total() != 0 {
					t.Errorf("%s: %d Luhn-valid numbers in decoded values: %v", k, h.Total(), h.Columns)
				}
			}
		}
		// every PCI column of every payments file holds its landed form only
		for _, k := range keys {
			if !strings.HasPrefix(k, landing.TablePrefix("payments")) || !strings.HasSuffix(k, landing.DataSuffix) {
				continue
			}
			raw, _ := os.ReadFile(filepath.Join(e.lake, k))
			for _, c := range []string{"card_number", "card_holder"} {
				for _, v := range extracttest.ParquetColumn(t, raw, c) {
					if v != "" && !strings.HasPrefix(v, "tok_"+e.reg.Tokenizer.KeyID+"_") {
						t.Fatalf("%s: a %s value is not a token", k, c)
					}
				}
			}
			for _, v := range extracttest.ParquetColumn(t, raw, "card_last4") {
				if v != "" && (len(v) != 4 || strings.Trim(v, "0123456789") != "") {
					t.Fatalf("%s: a card_last4 value is not 4 digits", k)
				}
			}
		}
		// tokens of the fixture PANs on s00 and s01 in this run
		for _, sh := range []string{"s00", "s01"} {
			set := map[string]bool{}
			for _, v := range columnOf(t, e, "payments", sh, fixture, "card_number") {
				set[v] = true
			}
			tokens[sh+"/"+string(rune('0'+run))] = set
		}
	}
	want := map[string]bool{}
	tok, _ := tokenize.New(e.reg.Tokenizer.KeyID, []byte(testKey))
	col, _ := tableColumn(e.reg, "payments", "card_number")
	for _, p := range testPANs {
		v, _ := tok.Apply(col, p)
		want[v] = true
	}
	for k, set := range tokens {
		if !sameSet(set, want) {
			t.Errorf("%s: card_number tokens %v, want exactly the tokens of the fixture PANs %v", k, keysOf(set), keysOf(want))
		}
	}

	// the warehouse: load everything, scan every string column
	db := e.warehouse()
	loadLanded(t, db, e.reg, e.lake, "payments")
	wh := e.dqWarehouse(db)
	cols, err := wh.StringColumns(ctx)
	if err != nil {
		t.Fatal(err)
	}
	for _, c := range cols["payments"] {
		if c == "card_cvv" || c == "card_expiry" {
			t.Errorf("raw.payments has a drop-policy column %s", c)
		}
		hits, _, err := wh.ScanPCI(ctx, "payments", c, nil)
		if err != nil {
			t.Fatal(err)
		}
		if hits != 0 {
			t.Errorf("raw.payments.%s: %d card numbers", c, hits)
		}
		for p := range pans {
			var n int
			if err := db.DB().QueryRow("SELECT count(*) FROM raw.payments WHERE contains("+c+", ?)", p).Scan(&n); err != nil {
				t.Fatal(err)
			}
			if n > 0 {
				t.Fatalf("raw.payments.%s holds a card number the shards hold", c)
			}
		}
	}
	var rows int
	if err := db.DB().QueryRow("SELECT count(*) FROM raw.payments").Scan(&rows); err != nil || rows < 800 {
		t.Fatalf("raw.payments has %d rows (%v)", rows, err)
	}
}

func columnOf(t *testing.T, e *env, table, shard string, w window.Window, col string) []string {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(e.lake, landing.BatchKey(table, shard, w.Start, w.End)))
	if err != nil {
		t.Fatal(err)
	}
	return extracttest.ParquetColumn(t, b, col)
}

func tableColumn(reg *registry.Registry, table, col string) (registry.Column, bool) {
	tb, _ := reg.Table(table)
	return tb.Column(col)
}

func waitPast(t *testing.T, at time.Time) {
	t.Helper()
	if d := time.Until(at); d > 0 {
		t.Logf("waiting %s for window end %s", d.Round(time.Millisecond), at.Format(time.RFC3339))
		time.Sleep(d + 100*time.Millisecond)
	}
}

func sameSet(a, b map[string]bool) bool {
	if len(a) != len(b) {
		return false
	}
	for k := range a {
		if !b[k] {
			return false
		}
	}
	return true
}

func keysOf(m map[string]bool) []string {
	var out []string
	for k := range m {
		out = append(out, k)
	}
	return out
}

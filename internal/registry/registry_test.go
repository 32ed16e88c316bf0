package registry

import (
	"errors"
	"os"
	"strings"
	"testing"
	"time"
)

func load(t *testing.T, path string) *Registry {
	t.Helper()
	r, err := Load(path)
	if err != nil {
		t.Fatalf("Load(%s): %v", path, err)
	}
	return r
}

func TestCommittedRegistryIsValid(t *testing.T) {
	r := load(t, "../../shards.yaml")
	if len(r.Shards) == 0 || r.Routing.Buckets != 4096 {
		t.Fatalf("unexpected registry: %d shards, %d buckets", len(r.Shards), r.Routing.Buckets)
	}
}

// checkText parses and validates text and returns the messages.
func checkText(t *testing.T, text string) []string {
	t.Helper()
	_, err := Check(strings.NewReader(text))
	if err == nil {
		return nil
	}
	var errs Errors
	if !errors.As(err, &errs) {
		t.Fatalf("Check returned %T, want Errors: %v", err, err)
	}
	var out []string
	for _, e := range errs {
		out = append(out, e.Error())
	}
	return out
}

// base is a valid two-shard registry that the bad cases edit.
const base = `version: 1
fleet: test
routing: {function: fnv1a64-int64be, buckets: 16}
shards:
  - id: a
    state: active
    connection: {extract: {env: A_DSN}, replication: {env: A_REPL}}
    buckets: ["0-7"]
  - id: b
    state: active
    connection: {extract: {env: B_DSN}, replication: {env: B_REPL}}
    buckets: ["8-15"]
tables:
  - name: orders
    primary_key: [order_id]
    watermark: updated_at
    version: row_version
    columns:
      - {name: order_id, type: uuid}
      - {name: bucket, type: integer}
      - {name: card_number, type: text, pci: token}
      - {name: updated_at, type: timestamptz}
      - {name: row_version, type: bigint}
tokenizer: {key_id: k1, key: {env: TOKEN_KEY}}
environments:
  local:
    object_store: {kind: dir, path: var/lake}
    warehouse: {kind: duckdb, path: var/w.duckdb}
    airflow: {target: local}
`

func TestCheck(t *testing.T) {
	cases := []struct {
		name    string
		old     string // replaced in base
		new     string
		wantErr []string // substrings, each must appear in some message
	}{
		{"valid", "", "", nil},
		{"overlap", `buckets: ["8-15"]`, `buckets: ["6-15"]`, []string{"shards[1].buckets: overlaps shards[0] (a) at 6-7"}},
		{"gap", `buckets: ["8-15"]`, `buckets: ["8-14"]`, []string{"shards: buckets 15 are owned by no shard"}},
		{"out of range", `buckets: ["8-15"]`, `buckets: ["8-16"]`, []string{"shards[1].buckets[0]: 8-16 is outside 0-15"}},
		{"bad range", `buckets: ["8-15"]`, `buckets: ["15-8"]`, []string{"is not a bucket range"}},
		{"unknown key", "    state: active\n    connection: {extract: {env: B_DSN}", "    state: active\n    weight: 2\n    connection: {extract: {env: B_DSN}", []string{"shards[1].weight: unknown key"}},
		{"plaintext password", "{env: A_DSN}", `{env: A_DSN, k8s_secret: "postgres://u:hunter2@h/db"}`, []string{"shards[0].connection.extract.k8s_secret: plaintext password"}},
		{"password key", "fleet: test", "fleet: test\npassword: hunter2", []string{"password: plaintext secret"}},
		{"kv password", "{env: A_DSN}", `{env: A_DSN, k8s_key: "host=h password=hunter2"}`, []string{"plaintext password"}},
		{"missing env", "{env: A_REPL}", "{k8s_secret: a}", []string{"shards[0].connection.replication.env: required"}},
		{"duplicate id", "  - id: b", "  - id: a", []string{`shards[1].id: duplicate id "a"`}},
		{"bad state", "    state: active\n    connection: {extract: {env: B_DSN}", "    state: sleeping\n    connection: {extract: {env: B_DSN}", []string{`shards[1].state: "sleeping" is not a state`}},
		{"retired owns", "    state: active\n    connection: {extract: {env: B_DSN}", "    state: retired\n    connection: {extract: {env: B_DSN}", []string{"retired shard b still owns 8-15"}},
		{"cvv kept", "{name: card_number, type: text, pci: token}", "{name: card_number, type: text, pci: token}\n      - {name: card_cvv, type: text}", []string{"card_cvv is a card verification code and must be drop"}},
		{"bad policy", "pci: token}", "pci: encrypt}", []string{`"encrypt" is not a policy`}},
		{"required column rolling out", "{name: bucket, type: integer}", "{name: bucket, type: integer, adding: true}", []string{`tables[0].columns[`, `].adding: column "bucket" is required on every shard`}},
		{"column rolling out", "{name: card_number, type: text, pci: token}", "{name: card_number, type: text, pci: token}\n      - {name: gift_note, type: text, adding: true}", nil},
		{"no watermark", "watermark: updated_at", "watermark: changed_at", []string{`tables[0].watermark: column "changed_at" is not declared`}},
		{"bad window", "fleet: test", "fleet: test\nextract: {window: 7m}", []string{"extract.window: 7m0s must divide a day"}},
		{"zero window", "fleet: test", "fleet: test\nextract: {window: 0s}", []string{"extract.window"}},
		{"start off the window", "fleet: test", "fleet: test\nextract: {window: 1h, start: 2026-12-01T00:30:00Z}", []string{"extract.start: 2026-12-01T00:30:00Z is not the start of a 1h0m0s window"}},
		{"start on a window", "fleet: test", "fleet: test\nextract: {window: 15m, start: 2026-12-01T00:45:00Z}", nil},
		{"bad duration", "fleet: test", "fleet: test\nextract: {window: soon}", []string{`"soon" is not a duration`}},
		{"alert after deadline", "fleet: test", "fleet: test\nsla: {finance_alert_at: \"07:00\"}", []string{"sla.finance_alert_at: 07:00 must be before finance_ready_by 06:00"}},
		{"monitoring", "fleet: test", "fleet: test\nmonitoring: {runbooks: \"file:///docs\", alert_after: -1m, slot_retained_wal: 0, batch_late: 30m}",
			[]string{"monitoring.runbooks: \"file:///docs\" is not an http(s) URL", "monitoring.alert_after: must not be negative", "monitoring.slot_retained_wal: must be positive", "monitoring.batch_late: 30m0s must be longer than extract.window 1h0m0s"}},
		{"retention", "fleet: test", "fleet: test\nretention: {hot: 13mo, archive: 12mo, archive_class: STANDARD_IA, noncurrent_days: 0, abort_multipart_days: 400, finance: 6mo, tables: {refunds: {hot: 1y}, orders: {archive: 400d}}}",
			[]string{"retention.archive: 12mo must be longer than hot 13mo", `retention.archive_class: "STANDARD_IA" is not an archive storage class`, "retention.noncurrent_days: 0 is out of range", "retention.abort_multipart_days: 400 is out of range", "retention.finance: 6mo must be at least hot 13mo", `retention.tables.refunds: "refunds" is not a table`, "retention.tables.orders.archive: 400d must be longer than hot 13mo"}},
		{"retention per table", "fleet: test", "fleet: test\nretention: {tables: {orders: {hot: 90d, archive: 10y}}}", nil},
		{"bad period", "fleet: test", "fleet: test\nretention: {hot: 13 months}", []string{`"13 months" is not a period`}},
		{"bad byte size", "fleet: test", "fleet: test\nmonitoring: {slot_retained_wal: 50GB}", []string{"50GB"}},
		{"monitoring targets", "    airflow: {target: local}", "    airflow: {target: local}\n    monitoring: {pushgateway_url: \"pushgateway:9091\", alertmanager_url: \"http://am:9093\"}", []string{`environments.local.monitoring.pushgateway_url: "pushgateway:9091" is not`}},
		{"bad env kind", "kind: duckdb", "kind: bigquery", []string{`environments.local.warehouse.kind: "bigquery" is not a kind`}},
		{"snowflake fields", "{kind: duckdb, path: var/w.duckdb}", "{kind: snowflake}", []string{"environments.local.warehouse.dsn.env: required", "environments.local.warehouse.database: required"}},
		{"not yaml", "", "\t: [", []string{"not valid YAML"}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			text := base
			if c.old != "" {
				if !strings.Contains(base, c.old) {
					t.Fatalf("case edits %q, which is not in base", c.old)
				}
				text = strings.Replace(base, c.old, c.new, 1)
			} else if c.new != "" {
				text = c.new
			}
			msgs := checkText(t, text)
			if c.wantErr == nil && msgs != nil {
				t.Fatalf("want valid, got:\n%s", strings.Join(msgs, "\n"))
			}
			for _, w := range c.wantErr {
				found := false
				for _, m := range msgs {
					found = found || strings.Contains(m, w)
				}
				if !found {
					t.Errorf("want a message containing %q, got:\n%s", w, strings.Join(msgs, "\n"))
				}
			}
		})
	}
}

// The acceptance case: one file with four different mistakes reports all four.
func TestCheckReportsEverythingAtOnce(t *testing.T) {
	f, err := os.Open("testdata/bad-four.yaml")
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	_, err = Check(f)
	var errs Errors
	if !errors.As(err, &errs) {
		t.Fatalf("want Errors, got %v", err)
	}
	want := []string{
		"shards[1].buckets: overlaps shards[0] (s00) at 512-1023",
		"shards: buckets 3584-4095 are owned by no shard",
		"shards[2].shard_weight: unknown key",
		"shards[3].connection.extract.k8s_secret: plaintext password",
	}
	got := err.Error()
	for _, w := range want {
		if !strings.Contains(got, w) {
			t.Errorf("missing %q in:\n%s", w, got)
		}
	}
	if strings.Contains(got, "hunter2") {
		t.Errorf("the error repeats the plaintext password:\n%s", got)
	}
}

const moves = `
moves:
  - epoch: 1
    buckets: ["4-7"]
    from: a
    to: b
    cutover: 2026-01-01T00:00:00Z
  - epoch: 2
    buckets: ["12-15"]
    from: b
    to: a
    cutover: 2026-02-01T00:00:00Z
`

func withMoves(t *testing.T) *Registry {
	t.Helper()
	text := strings.Replace(base, `buckets: ["0-7"]`, `buckets: ["0-3", "12-15"]`, 1)
	text = strings.Replace(text, `buckets: ["8-15"]`, `buckets: ["4-11"]`, 1) + moves
	r, err := Check(strings.NewReader(text))
	if err != nil {
		t.Fatalf("Check: %v", err)
	}
	return r
}

func TestOwnershipAcrossEpochs(t *testing.T) {
	r := withMoves(t)
	jan := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	feb := time.Date(2026, 2, 1, 0, 0, 0, 0, time.UTC)
	cases := []struct {
		bucket    int
		at        time.Time
		shard     string
		wantEpoch int
	}{
		{5, jan.Add(-time.Nanosecond), "a", 0},
		{5, jan, "b", 1}, // a change stamped exactly at the cutover belongs to the new owner
		{5, feb.Add(time.Hour), "b", 2},
		{13, jan.Add(time.Hour), "b", 1},
		{13, feb, "a", 2},
		{0, time.Time{}, "a", 0},
		{9, feb.Add(time.Hour), "b", 2},
	}
	for _, c := range cases {
		got, epoch := r.OwnerAt(c.bucket, c.at)
		if got != c.shard || epoch != c.wantEpoch {
			t.Errorf("OwnerAt(%d, %s) = %s epoch %d, want %s epoch %d", c.bucket, c.at, got, epoch, c.shard, c.wantEpoch)
		}
		if !r.Owns(c.shard, c.bucket, c.at) {
			t.Errorf("Owns(%s, %d, %s) = false", c.shard, c.bucket, c.at)
		}
		// Owned (landing.Ownership) is Owns with EpochAt, also for the shard that did not own it
		for _, sh := range []string{"a", "b"} {
			if epoch, ok := r.Owned(sh, c.bucket, c.at); ok != (sh == c.shard) || epoch != c.wantEpoch {
				t.Errorf("Owned(%s, %d, %s) = %d, %v, want %d, %v", sh, c.bucket, c.at, epoch, ok, c.wantEpoch, sh == c.shard)
			}
		}
	}
	if got := FormatRanges(r.OwnedAt("a", jan.Add(-time.Hour))); got != "0-7" {
		t.Errorf("a owned %s before the first move, want 0-7", got)
	}
	if got := FormatRanges(r.OwnedAt("a", feb)); got != "0-3,12-15" {
		t.Errorf("a owns %s after the second move, want 0-3,12-15", got)
	}
}

// Every (bucket, instant) is covered by exactly one interval.
func TestIntervalsPartitionEveryEpoch(t *testing.T) {
	r := withMoves(t)
	instants := []time.Time{{}, time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC), time.Date(2026, 1, 15, 0, 0, 0, 0, time.UTC), time.Date(2027, 1, 1, 0, 0, 0, 0, time.UTC)}
	ivs := r.Intervals()
	for _, at := range instants {
		for b := 0; b < r.Routing.Buckets; b++ {
			var owners []string
			for _, iv := range ivs {
				if iv.Contains(b) && !at.Before(iv.From) && (iv.To.IsZero() || at.Before(iv.To)) {
					owners = append(owners, iv.Shard)
				}
			}
			want, _ := r.OwnerAt(b, at)
			if len(owners) != 1 || owners[0] != want {
				t.Errorf("bucket %d at %s: intervals give %v, OwnerAt gives %s", b, at, owners, want)
			}
		}
	}
}

func TestMoveInconsistencies(t *testing.T) {
	text := strings.Replace(base, `buckets: ["0-7"]`, `buckets: ["0-3", "12-15"]`, 1)
	text = strings.Replace(text, `buckets: ["8-15"]`, `buckets: ["4-11"]`, 1)
	cases := []struct{ name, moves, want string }{
		{"to does not own after", strings.Replace(moves, `buckets: ["12-15"]`, `buckets: ["8-11"]`, 1), "should own buckets"},
		{"epoch order", strings.Replace(moves, "epoch: 2", "epoch: 3", 1), "moves[1].epoch: is 3, want 2"},
		{"cutover order", strings.Replace(moves, "2026-02-01", "2025-12-01", 1), "moves[1].cutover"},
		{"unknown shard", strings.Replace(moves, "to: b", "to: z", 1), `moves[0].to: unknown shard "z"`},
		{"same shard", strings.Replace(moves, "to: b", "to: a", 1), "two different shards"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			msgs := checkText(t, text+c.moves)
			if !strings.Contains(strings.Join(msgs, "\n"), c.want) {
				t.Errorf("want %q, got:\n%s", c.want, strings.Join(msgs, "\n"))
			}
		})
	}
}

func TestStateRules(t *testing.T) {
	draining := strings.Replace(base, "    state: active\n    connection: {extract: {env: B_DSN}", "    state: draining\n    connection: {extract: {env: B_DSN}", 1)
	if msgs := checkText(t, draining); !strings.Contains(strings.Join(msgs, "\n"), "draining shard b is the source of no move") {
		t.Errorf("got %v", msgs)
	}
	onboarding := strings.Replace(base, "tables:\n", `  - id: c
    state: onboarding
    connection: {extract: {env: C_DSN}, replication: {env: C_REPL}}
tables:
`, 1)
	if msgs := checkText(t, onboarding); msgs != nil {
		t.Errorf("an onboarding shard without buckets is valid, got %v", msgs)
	}
}

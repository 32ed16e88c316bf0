package plan

import (
	"os"
	"strings"
	"testing"
	"time"

	"github.com/shopsphere/shardflow/internal/registry"
)

var now = time.Date(2026, 12, 1, 12, 0, 0, 0, time.UTC)

func committed(t *testing.T) string {
	t.Helper()
	b, err := os.ReadFile("../../shards.yaml")
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

func check(t *testing.T, text string) *registry.Registry {
	t.Helper()
	r, err := registry.Check(strings.NewReader(text))
	if err != nil {
		t.Fatalf("edited registry invalid: %v", err)
	}
	return r
}

func replace(t *testing.T, s string, pairs ...string) string {
	t.Helper()
	for i := 0; i+1 < len(pairs); i += 2 {
		if !strings.Contains(s, pairs[i]) {
			t.Fatalf("shards.yaml has no %q", pairs[i])
		}
		s = strings.Replace(s, pairs[i], pairs[i+1], 1)
	}
	return s
}

const s04 = `
  - id: s04
    state: %s
    connection:
      extract: {env: SHARDFLOW_S04_EXTRACT_DSN, k8s_secret: shard-s04, k8s_key: extract-dsn}
      replication: {env: SHARDFLOW_S04_REPLICATION_DSN, k8s_secret: shard-s04, k8s_key: replication-dsn}
`

func addShard(state, buckets string) string {
	s := strings.Replace(s04, "%s", state, 1)
	if buckets != "" {
		s += `    buckets: ["` + buckets + `"]` + "\n"
	}
	return s
}

const firstMove = "    cutover: 2026-06-01T00:00:00Z\n"

func moveTo04(cutover string) string {
	return firstMove + "  - epoch: 2\n    buckets: [\"3840-4095\"]\n    from: s03\n    to: s04\n    cutover: " + cutover + "\n"
}

const pending = "  - epoch: 2\n    buckets: [\"3840-4095\"]\n    from: s03\n    to: s04\n"

// fence: s03's marker 1.2 s before s04's on their own clocks, both before `now`.
const fence = "    fence:\n      from: {at: 2026-11-30T10:00:01.5Z, lsn: 0/5000028}\n      to: {at: 2026-11-30T10:00:02.7Z, lsn: 0/3000A10}\n"

// Recording a pending move (shardctl move cutover's edit) is not a change of the past,
// though its markers are: landing judged the shards by those very markers.
func TestRecordingAPendingMove(t *testing.T) {
	base := committed(t)
	const s03 = "    buckets: [\"3072-4095\"]\n"
	declared := replace(t, base, s03, s03+addShard("onboarding", ""), firstMove, firstMove+pending)
	rec := replace(t, base, s03, `    buckets: ["3072-3839"]`+"\n"+addShard("active", "3840-4095"), firstMove, firstMove+pending+fence)
	p := Compare(check(t, declared), check(t, rec), now)
	if len(p.Findings) != 0 {
		t.Errorf("findings: %v", p.Findings)
	}
	want := "move 2 recorded: epoch 2, buckets 3840-4095, s03 → s04, fenced: s03 at 2026-11-30T10:00:01.5Z (0/5000028), s04 at 2026-11-30T10:00:02.7Z (0/3000A10)"
	if !strings.Contains(strings.Join(p.Changes, "\n"), want) {
		t.Errorf("changes %q, want %q", p.Changes, want)
	}
	// the same fence moved 2 s later on s03 after recording rewrites s03's past
	later := strings.Replace(rec, "10:00:01.5Z", "10:00:03.5Z", 1)
	p = Compare(check(t, rec), check(t, later), now)
	if !p.Errors() || !strings.Contains(p.Findings[0].Message+p.Findings[len(p.Findings)-1].Message, "shard s03, buckets 3840-4095 at 2026-11-30T10:00:01.5Z") {
		t.Errorf("a recorded fence edited: %v", p.Findings)
	}
}

func TestCompare(t *testing.T) {
	base := committed(t)
	const s03 = "    buckets: [\"3072-4095\"]\n"
	cases := []struct {
		name     string
		edit     func(string) string
		changes  []string // substrings, each in some change line
		findings []string // "<severity>: <path>" of every finding, in order
	}{
		{name: "no change", edit: func(s string) string { return s }},
		{
			name:    "onboarding shard",
			edit:    func(s string) string { return replace(t, s, s03, s03+addShard("onboarding", "")) },
			changes: []string{"shard s04 added (onboarding, buckets none)"},
		},
		{
			name: "move with a future cutover",
			edit: func(s string) string {
				return replace(t, s, s03, `    buckets: ["3072-3839"]`+"\n"+addShard("active", "3840-4095"), firstMove, moveTo04("2027-01-15T00:00:00Z"))
			},
			changes:  []string{"shard s03: buckets 3072-4095 → 3072-3839", "shard s04 added (active", "move added: epoch 2, buckets 3840-4095, s03 → s04 at 2027-01-15"},
			findings: []string{"warning: moves[1].cutover"}, // hand-recorded: clock-judged, unfenced
		},
		{
			name: "move with a cutover in the past",
			edit: func(s string) string {
				return replace(t, s, s03, `    buckets: ["3072-3839"]`+"\n"+addShard("active", "3840-4095"), firstMove, moveTo04("2026-11-15T00:00:00Z"))
			},
			findings: []string{"warning: moves[1].cutover", "error: moves"},
		},
		{
			name: "move declared pending",
			edit: func(s string) string {
				return replace(t, s, s03, s03+addShard("onboarding", ""), firstMove, firstMove+pending)
			},
			changes: []string{"move added: epoch 2, buckets 3840-4095, s03 → s04, pending", "s04: `shardctl connectors apply`", "`shardctl move start 2`, `move status 2` until caught up"},
		},
		{
			name: "move recorded without being declared",
			edit: func(s string) string {
				return replace(t, s, s03, `    buckets: ["3072-3839"]`+"\n"+addShard("active", "3840-4095"), firstMove, firstMove+pending+fence)
			},
			findings: []string{"error: moves[1].fence", "error: moves"},
		},
		{
			name:     "past move edited",
			edit:     func(s string) string { return replace(t, s, firstMove, "    cutover: 2026-07-01T00:00:00Z\n") },
			changes:  []string{"move 0 edited"},
			findings: []string{"error: moves[0]", "error: moves"},
		},
		{
			name: "routing changed",
			edit: func(s string) string {
				return replace(t, s, "buckets: 4096", "buckets: 4095", `["3072-4095"]`, `["3072-4094"]`, `["3584-4095"]`, `["3584-4094"]`)
			},
			findings: []string{"error: routing", "error: moves[0]"}, // the move's range had to shrink too
		},
		{
			name: "pci weakened",
			edit: func(s string) string {
				return replace(t, s, "{name: card_number, type: text, pci: token}", "{name: card_number, type: text, pci: last4}")
			},
			changes:  []string{"column card_number pci token → last4"},
			findings: []string{"error: tables[2].columns[8].pci"},
		},
		{
			name: "pci strengthened",
			edit: func(s string) string {
				return replace(t, s, "{name: card_last4, type: text, pci: last4}", "{name: card_last4, type: text, pci: drop}")
			},
			changes: []string{"column card_last4 pci last4 → drop"},
		},
		{
			name: "new column",
			edit: func(s string) string {
				return replace(t, s, "      - {name: card_last4, type: text, pci: last4}\n", "      - {name: card_last4, type: text, pci: last4}\n      - {name: note, type: text}\n")
			},
			findings: []string{"warning: tables[2].columns[13]"},
		},
		{
			name: "new column rolling out",
			edit: func(s string) string {
				return replace(t, s, "      - {name: card_last4, type: text, pci: last4}\n", "      - {name: card_last4, type: text, pci: last4}\n      - {name: refund_reason, type: text, adding: true}\n")
			},
			changes:  []string{"column refund_reason text added (pci: keep), rolling out (adding: true)", "load adds it to raw.payments", "column.include.list gains it"},
			findings: []string{"warning: tables[2].columns[13]"},
		},
		{
			name: "type change",
			edit: func(s string) string {
				return replace(t, s, "{name: amount_cents, type: bigint}", "{name: amount_cents, type: integer}")
			},
			changes:  []string{"column amount_cents type bigint → integer"},
			findings: []string{"error: tables[2].columns[6].type"},
		},
		{
			name:     "key rotation",
			edit:     func(s string) string { return replace(t, s, "key_id: k1", "key_id: k2") },
			findings: []string{"warning: tokenizer.key_id"},
		},
		{
			name: "retention shortened",
			edit: func(s string) string {
				return replace(t, s, "  hot: 13mo\n", "  hot: 6mo\n  tables: {payments: {archive: 5y}}\n")
			},
			changes:  []string{"retention: hot 13mo, archive 7y → hot 6mo, archive 7y", "retention of payments: hot 13mo, archive 7y → hot 6mo, archive 5y"},
			findings: []string{"warning: retention.hot", "warning: retention.tables.payments.archive"},
		},
	}
	b := check(t, base)
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			p := Compare(b, check(t, tc.edit(base)), now)
			for _, want := range tc.changes {
				found := false
				for _, c := range p.Changes {
					found = found || strings.Contains(c, want)
				}
				if !found {
					t.Errorf("no change line with %q in %q", want, p.Changes)
				}
			}
			var got []string
			for _, f := range p.Findings {
				got = append(got, string(f.Severity)+": "+f.Path)
			}
			if strings.Join(got, "; ") != strings.Join(tc.findings, "; ") {
				t.Errorf("findings %q, want %q\n%v", got, tc.findings, p.Findings)
			}
			if p.Errors() != strings.Contains(strings.Join(tc.findings, " "), "error:") {
				t.Errorf("Errors() = %v", p.Errors())
			}
		})
	}
}

// A shard removed from the file is an error; a shard's coverage follows its state.
func TestRemovedShardAndCoverage(t *testing.T) {
	base := committed(t)
	with := check(t, strings.Replace(base, "    buckets: [\"3072-4095\"]\n", "    buckets: [\"3072-4095\"]\n"+addShard("onboarding", ""), 1))
	b := check(t, base)
	p := Compare(b, with, now)
	if p.Coverage.Pairs != 15 || strings.Join(p.Coverage.Added, ",") != "s04/order_items,s04/orders,s04/payments" {
		t.Errorf("coverage %+v", p.Coverage)
	}
	back := Compare(with, b, now)
	if !back.Errors() || back.Findings[0].Path != "shards" || len(back.Coverage.Removed) != 3 {
		t.Errorf("removing s04: %v %+v", back.Findings, back.Coverage)
	}
	if p := Compare(nil, b, now); len(p.Changes) != 1 || !strings.HasPrefix(p.Changes[0], "new registry: 4 shards") {
		t.Errorf("no base: %v", p.Changes)
	}
}

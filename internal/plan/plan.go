// Package plan says what an edit of shards.yaml changes, before anything is applied:
// the fleet's own change (shards, ownership, tables, settings), the hazards a reviewer
// must not miss (ownership of the past changed: a past move edited, a cutover already
// passed; routing changed, a PCI policy weakened, a shard removed or renamed), and the
// dq coverage that follows. The
// generated files that must change with it are genfile.Sets; shardctl plan prints both.
package plan

import (
	"fmt"
	"io"
	"reflect"
	"sort"
	"strings"
	"time"

	"github.com/shopsphere/shardflow/internal/registry"
)

// Severity grades a finding.
type Severity string

// Severities. An Error is a change that must not be merged as it is (it rewrites
// history or breaks the data); a Warning needs a reviewer's yes.
const (
	Error   Severity = "error"
	Warning Severity = "warning"
)

// Finding is a hazard of the edit, with the field path it concerns.
type Finding struct {
	Severity Severity
	Path     string
	Message  string
}

func (f Finding) String() string { return fmt.Sprintf("%s: %s: %s", f.Severity, f.Path, f.Message) }

// Coverage is what dq checks per window: one (shard, table) pair for every shard that
// is not retired and every table.
type Coverage struct {
	Pairs          int
	Added, Removed []string // "shard/table"
}

// Plan is the difference between a base registry (nil: none yet) and the edited one.
type Plan struct {
	Changes  []string // what changed, one line each, in file order
	Findings []Finding
	Coverage Coverage
}

// Errors reports whether the plan has a finding of severity Error.
func (p *Plan) Errors() bool {
	for _, f := range p.Findings {
		if f.Severity == Error {
			return true
		}
	}
	return false
}

// Compare returns the plan from base to cur at instant now (cutovers are judged
// against it). base may be nil.
func Compare(base, cur *registry.Registry, now time.Time) *Plan {
	p := &Plan{}
	if base == nil {
		p.Changes = append(p.Changes, fmt.Sprintf("new registry: %d shards, %d buckets, %d moves, %d tables",
			len(cur.Shards), cur.Routing.Buckets, len(cur.Moves), len(cur.Tables)))
		p.Coverage = coverage(nil, cur)
		return p
	}
	p.routing(base, cur)
	p.shards(base, cur)
	p.moves(base, cur, now)
	p.tables(base, cur)
	p.settings(base, cur)
	p.Coverage = coverage(base, cur)
	return p
}

func (p *Plan) change(format string, args ...any) {
	p.Changes = append(p.Changes, fmt.Sprintf(format, args...))
}

func (p *Plan) find(s Severity, path, format string, args ...any) {
	p.Findings = append(p.Findings, Finding{Severity: s, Path: path, Message: fmt.Sprintf(format, args...)})
}

func (p *Plan) routing(base, cur *registry.Registry) {
	if base.Routing != cur.Routing {
		p.change("routing: %s/%d buckets → %s/%d buckets", base.Routing.Function, base.Routing.Buckets, cur.Routing.Function, cur.Routing.Buckets)
		p.find(Error, "routing", "changed on a live fleet: every stored bucket and every ownership decision would be wrong (grow with moves; docs/shards-yaml.md#routing)")
	}
}

func (p *Plan) shards(base, cur *registry.Registry) {
	for _, s := range cur.Shards {
		old, ok := base.Shard(s.ID)
		if !ok {
			p.change("shard %s added (%s, buckets %s)", s.ID, s.State, rangesOrNone(s.Buckets))
			continue
		}
		if old.State != s.State {
			p.change("shard %s: state %s → %s", s.ID, old.State, s.State)
		}
		if registry.FormatRanges(old.Buckets) != registry.FormatRanges(s.Buckets) {
			p.change("shard %s: buckets %s → %s", s.ID, rangesOrNone(old.Buckets), rangesOrNone(s.Buckets))
		}
		if old.Connection != s.Connection {
			p.change("shard %s: connection secret references changed", s.ID)
		}
	}
	for _, s := range base.Shards {
		if _, ok := cur.Shard(s.ID); !ok {
			p.change("shard %s removed", s.ID)
			p.find(Error, "shards", "%s removed: a shard is never deleted, even retired; finance reruns of old dates need its ownership history (set state: retired)", s.ID)
		}
	}
}

func rangesOrNone(rs []registry.Range) string {
	if len(rs) == 0 {
		return "none"
	}
	return registry.FormatRanges(rs)
}

func (p *Plan) moves(base, cur *registry.Registry, now time.Time) {
	n := min(len(base.Moves), len(cur.Moves))
	for i := 0; i < n; i++ {
		if !reflect.DeepEqual(base.Moves[i], cur.Moves[i]) {
			p.change("move %d edited: %s → %s", i, describeMove(base.Moves[i]), describeMove(cur.Moves[i]))
			p.find(Error, fmt.Sprintf("moves[%d]", i), "a past move was edited: ownership history is rewritten, so changes already loaded count differently and pinned finance runs stop verifying (append a new move instead)")
		}
	}
	for i := n; i < len(base.Moves); i++ {
		p.change("move %d removed: %s", i, describeMove(base.Moves[i]))
		p.find(Error, fmt.Sprintf("moves[%d]", i), "a move was removed: ownership history is rewritten (append a move back instead)")
	}
	for i := n; i < len(cur.Moves); i++ {
		p.change("move added: %s", describeMove(cur.Moves[i]))
	}
	p.pastOwnership(base, cur, now)
}

// pastOwnership reports buckets whose owner at some instant before now differs between
// base and cur: history the warehouse already counted by. It checks every bucket at
// the start of time, just before and at every cutover of either registry that is not
// after now, and at now.
func (p *Plan) pastOwnership(base, cur *registry.Registry, now time.Time) {
	if base.Routing.Buckets != cur.Routing.Buckets {
		return // reported as a routing error
	}
	instants := []time.Time{{}, now}
	for _, r := range []*registry.Registry{base, cur} {
		for _, m := range r.Moves {
			if !m.Cutover.After(now) {
				instants = append(instants, m.Cutover.Add(-time.Nanosecond), m.Cutover)
			}
		}
	}
	sort.Slice(instants, func(i, j int) bool { return instants[i].Before(instants[j]) })
	for _, t := range instants {
		type owners struct{ was, is string }
		var changed []int
		var first owners
		for b := 0; b < cur.Routing.Buckets; b++ {
			was, _ := base.OwnerAt(b, t)
			is, _ := cur.OwnerAt(b, t)
			if was != is {
				if len(changed) == 0 {
					first = owners{was, is}
				}
				changed = append(changed, b)
			}
		}
		if len(changed) > 0 {
			at := "since the beginning"
			if !t.IsZero() {
				at = "at " + t.UTC().Format(time.RFC3339Nano)
			}
			p.find(Error, "moves", "ownership of the past changes: buckets %s %s (bucket %d: %s → %s); changes already loaded would count differently and pinned finance runs would stop verifying (a move's cutover must be in the future; never edit the initial assignment)",
				registry.FormatRanges(registry.Ranges(changed)), at, changed[0], first.was, first.is)
			return
		}
	}
}

func describeMove(m registry.Move) string {
	return fmt.Sprintf("epoch %d, buckets %s, %s → %s at %s", m.Epoch, registry.FormatRanges(m.Buckets), m.From, m.To, m.Cutover.UTC().Format(time.RFC3339))
}

func (p *Plan) tables(base, cur *registry.Registry) {
	for ti, t := range cur.Tables {
		old, ok := base.Table(t.Name)
		if !ok {
			p.change("table %s added (%d columns)", t.Name, len(t.Columns))
			continue
		}
		if !reflect.DeepEqual(old.PrimaryKey, t.PrimaryKey) || old.Watermark != t.Watermark || old.Version != t.Version {
			p.change("table %s: key/watermark/version %v/%s/%s → %v/%s/%s", t.Name, old.PrimaryKey, old.Watermark, old.Version, t.PrimaryKey, t.Watermark, t.Version)
			p.find(Error, fmt.Sprintf("tables[%d]", ti), "the global key, watermark or version of %s changed: landed files, checksums and the marts are keyed by them", t.Name)
		}
		for ci, c := range t.Columns {
			path := fmt.Sprintf("tables[%d].columns[%d]", ti, ci)
			oc, ok := old.Column(c.Name)
			if !ok {
				p.change("table %s: column %s %s added (pci: %s)", t.Name, c.Name, c.Type, policy(c.PCI))
				p.find(Warning, path, "new column %s.%s: every shard refuses extraction (schema drift, exit 4) until it has it, and it lands %s", t.Name, c.Name, landsAs(c.PCI))
				continue
			}
			if oc.Type != c.Type {
				p.change("table %s: column %s type %s → %s", t.Name, c.Name, oc.Type, c.Type)
			}
			if policy(oc.PCI) != policy(c.PCI) {
				p.change("table %s: column %s pci %s → %s", t.Name, c.Name, policy(oc.PCI), policy(c.PCI))
				if weaker(oc.PCI, c.PCI) {
					p.find(Error, path+".pci", "%s.%s goes from %s to %s: more of a PCI value would land in the lake and the warehouse", t.Name, c.Name, policy(oc.PCI), policy(c.PCI))
				}
			}
		}
		for _, oc := range old.Columns {
			if _, ok := t.Column(oc.Name); !ok {
				p.change("table %s: column %s removed", t.Name, oc.Name)
			}
		}
	}
	for _, t := range base.Tables {
		if _, ok := cur.Table(t.Name); !ok {
			p.change("table %s removed: it is no longer extracted, loaded or checked", t.Name)
		}
	}
}

func policy(p registry.PCIPolicy) registry.PCIPolicy {
	if p == "" {
		return registry.PCIKeep
	}
	return p
}

func landsAs(p registry.PCIPolicy) string {
	switch policy(p) {
	case registry.PCIKeep:
		return "in clear (pci: keep): check it holds no card data"
	case registry.PCIDrop:
		return "nowhere (pci: drop)"
	}
	return "as " + string(p)
}

// exposure orders policies by how much of a value lands: drop < token < bin, last4 < keep.
func exposure(p registry.PCIPolicy) int {
	switch policy(p) {
	case registry.PCIDrop:
		return 0
	case registry.PCIToken:
		return 1
	case registry.PCIBIN, registry.PCILast4:
		return 2
	}
	return 3
}

func weaker(from, to registry.PCIPolicy) bool { return exposure(to) > exposure(from) }

func (p *Plan) settings(base, cur *registry.Registry) {
	if base.Extract != cur.Extract {
		start := func(e registry.Extract) string {
			if e.Start.IsZero() {
				return "none"
			}
			return e.Start.UTC().Format(time.RFC3339)
		}
		p.change("extract: window %s, safety lag %s, page size %d, start %s → window %s, safety lag %s, page size %d, start %s",
			base.Extract.Window.Duration, base.Extract.SafetyLag.Duration, base.Extract.PageSize, start(base.Extract),
			cur.Extract.Window.Duration, cur.Extract.SafetyLag.Duration, cur.Extract.PageSize, start(cur.Extract))
		if base.Extract.Window != cur.Extract.Window {
			p.find(Warning, "extract.window", "windows change length: landed keys are per window, so windows already landed keep their old length; backfills of past ranges use the new one and would land the same rows under new keys (replace, not add, by re-extracting whole days)")
		}
	}
	if base.SLA != cur.SLA {
		p.change("sla: cdc freshness %s, finance ready by %s (alert %s) → %s, %s (alert %s)",
			base.SLA.CDCFreshness.Duration, base.SLA.FinanceReadyBy, base.SLA.FinanceAlertAt,
			cur.SLA.CDCFreshness.Duration, cur.SLA.FinanceReadyBy, cur.SLA.FinanceAlertAt)
	}
	if base.Tokenizer != cur.Tokenizer {
		p.change("tokenizer: key %s → %s", base.Tokenizer.KeyID, cur.Tokenizer.KeyID)
		if base.Tokenizer.KeyID != cur.Tokenizer.KeyID {
			p.find(Warning, "tokenizer.key_id", "tokens change with the key: the same card gets another token from now on, so joins across the rotation need docs/decisions/0014-tokenizer-key-rotation.md")
		}
	}
	names := map[string]bool{}
	for n := range base.Environments {
		names[n] = true
	}
	for n := range cur.Environments {
		names[n] = true
	}
	var sorted []string
	for n := range names {
		sorted = append(sorted, n)
	}
	sort.Strings(sorted)
	for _, n := range sorted {
		b, c := base.Environments[n], cur.Environments[n]
		switch {
		case b == nil:
			p.change("environment %s added", n)
		case c == nil:
			p.change("environment %s removed", n)
		case !reflect.DeepEqual(b, c):
			p.change("environment %s changed", n)
		}
	}
}

func coverage(base, cur *registry.Registry) Coverage {
	after := pairs(cur)
	c := Coverage{Pairs: len(after)}
	if base == nil {
		return c
	}
	before := pairs(base)
	for k := range after {
		if !before[k] {
			c.Added = append(c.Added, k)
		}
	}
	for k := range before {
		if !after[k] {
			c.Removed = append(c.Removed, k)
		}
	}
	sort.Strings(c.Added)
	sort.Strings(c.Removed)
	return c
}

func pairs(r *registry.Registry) map[string]bool {
	out := map[string]bool{}
	for _, s := range r.Shards {
		if s.State == registry.StateRetired {
			continue
		}
		for _, t := range r.Tables {
			out[s.ID+"/"+t.Name] = true
		}
	}
	return out
}

// Summary is the one line of a plan's size.
func (p *Plan) Summary() string {
	errs, warns := 0, 0
	for _, f := range p.Findings {
		if f.Severity == Error {
			errs++
		} else {
			warns++
		}
	}
	return fmt.Sprintf("%d registry change(s), %d error(s), %d warning(s); dq covers %d shard/table pairs per window (+%d −%d)",
		len(p.Changes), errs, warns, p.Coverage.Pairs, len(p.Coverage.Added), len(p.Coverage.Removed))
}

// Print writes the registry part of the plan: changes (~), findings (!) and the dq
// coverage that follows.
func (p *Plan) Print(w io.Writer) {
	if len(p.Changes) == 0 {
		fmt.Fprintln(w, "  no change")
	}
	for _, c := range p.Changes {
		fmt.Fprintln(w, "  ~ "+c)
	}
	for _, f := range p.Findings {
		fmt.Fprintln(w, "  ! "+f.String())
	}
	if len(p.Coverage.Added) > 0 {
		fmt.Fprintln(w, "  dq coverage added: "+strings.Join(p.Coverage.Added, ", "))
	}
	if len(p.Coverage.Removed) > 0 {
		fmt.Fprintln(w, "  dq coverage removed: "+strings.Join(p.Coverage.Removed, ", "))
	}
}

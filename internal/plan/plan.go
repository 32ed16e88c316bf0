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
	recorded := map[int]bool{} // moves pending in base and recorded in cur
	for i := 0; i < n; i++ {
		was, is := base.Moves[i], cur.Moves[i]
		if reflect.DeepEqual(was, is) {
			continue
		}
		if was.Pending() && !is.Pending() && sameMove(was, is) {
			recorded[i] = true
			p.change("move %d recorded: %s", is.Epoch, describeMove(is))
			if is.Fence == nil {
				p.find(Warning, fmt.Sprintf("moves[%d].cutover", i), "recorded by hand with one instant, judged by both shards' clocks: record it with `shardctl move cutover`, which writes each shard's own fence marker (docs/decisions/0017)")
			}
			continue
		}
		p.change("move %d edited: %s → %s", i, describeMove(was), describeMove(is))
		p.find(Error, fmt.Sprintf("moves[%d]", i), "a past move was edited: ownership history is rewritten, so changes already loaded count differently and pinned finance runs stop verifying (append a new move instead)")
	}
	for i := n; i < len(base.Moves); i++ {
		p.change("move %d removed: %s", i, describeMove(base.Moves[i]))
		p.find(Error, fmt.Sprintf("moves[%d]", i), "a move was removed: ownership history is rewritten (append a move back instead)")
	}
	for i := n; i < len(cur.Moves); i++ {
		m := cur.Moves[i]
		p.change("move added: %s", describeMove(m))
		switch {
		case m.Pending():
			p.moveSteps(cur, m)
		case m.Fence != nil:
			p.find(Error, fmt.Sprintf("moves[%d].fence", i), "a move recorded without being declared first: while it ran, landing judged %s's changes by the registry alone and dropped those after its switch (declare it pending with `shardctl move plan --write`, deploy, then `shardctl move start`)", m.To)
		default:
			p.find(Warning, fmt.Sprintf("moves[%d].cutover", i), "a hand-recorded cutover is judged by both shards' clocks, and nothing fences writes at it; use `shardctl move` (docs/runbooks/split-a-shard.md)")
		}
	}
	p.pastOwnership(base, cur, now, recorded)
}

// sameMove reports whether two versions of a move are the same move (the recording
// only adds its cutover or fence).
func sameMove(a, b registry.Move) bool {
	return a.Epoch == b.Epoch && a.From == b.From && a.To == b.To && registry.FormatRanges(a.Buckets) == registry.FormatRanges(b.Buckets)
}

// moveSteps lists what a declared move needs before and after `shardctl move`
// (docs/runbooks/split-a-shard.md).
func (p *Plan) moveSteps(cur *registry.Registry, m registry.Move) {
	to, _ := cur.Shard(m.To)
	steps := []string{
		fmt.Sprintf("move %d (%s → %s, buckets %s) is declared pending; the steps (docs/runbooks/split-a-shard.md):", m.Epoch, m.From, m.To, registry.FormatRanges(m.Buckets)),
	}
	if to.State == registry.StateOnboarding {
		c := to.Connection
		steps = append(steps,
			fmt.Sprintf("  - %s: create the cluster with the shard schema and roles (local: `shardctl fleet up`)", to.ID),
			fmt.Sprintf("  - %s: secrets %s, %s, %s (Kubernetes secret %s)", to.ID, c.Extract.Env, c.Replication.Env, c.Admin.Env, c.Extract.K8sSecret),
			fmt.Sprintf("  - %s: `shardctl connectors apply` (its Debezium connector and slot)", to.ID))
	}
	steps = append(steps,
		"  - `shardctl generate` (DAGs, connector configs, dbt seeds) and commit them with shards.yaml",
		"  - deploy: DAGs, the shards.yaml ConfigMap, the task image (it carries the dbt seeds), `dbt seed`",
		fmt.Sprintf("  - `shardctl move start %d`, `move status %d` until caught up, `move cutover %d` (writes the fence into shards.yaml: commit, generate, deploy)", m.Epoch, m.Epoch, m.Epoch),
		fmt.Sprintf("  - `shardctl move verify %d`, then `shardctl move cleanup %d` once the pipeline has landed %s through its marker", m.Epoch, m.Epoch, m.From))
	p.Changes = append(p.Changes, steps...)
}

// pastOwnership reports buckets some shard owned differently, at some instant before
// now, in base and in cur: history the warehouse already counted by. It checks every
// shard and bucket at the start of time, just before and at every cutover and fence
// marker of either registry that is not after now, and at now. A move recorded by this
// edit changes its shards' ownership from their markers on, as landing already judged
// by them: those instants are not a change of the past.
func (p *Plan) pastOwnership(base, cur *registry.Registry, now time.Time, recorded map[int]bool) {
	if base.Routing.Buckets != cur.Routing.Buckets {
		return // reported as a routing error
	}
	instants := []time.Time{{}, now}
	for _, r := range []*registry.Registry{base, cur} {
		for _, m := range r.Moves {
			for _, t := range []time.Time{m.SourceEnd(), m.TargetBegin()} {
				if !m.Pending() && !t.After(now) {
					instants = append(instants, t.Add(-time.Nanosecond), t)
				}
			}
		}
	}
	sort.Slice(instants, func(i, j int) bool { return instants[i].Before(instants[j]) })
	exempt := func(b int, t time.Time) bool {
		for i := range recorded {
			m := cur.Moves[i]
			if m.Contains(b) && !t.Before(minTime(m.SourceEnd(), m.TargetBegin())) {
				return true
			}
		}
		return false
	}
	for _, t := range instants {
		for _, s := range cur.Shards {
			if _, ok := base.Shard(s.ID); !ok {
				continue // a new shard has no past
			}
			var changed []int
			for b := 0; b < cur.Routing.Buckets; b++ {
				if base.Owns(s.ID, b, t) != cur.Owns(s.ID, b, t) && !exempt(b, t) {
					changed = append(changed, b)
				}
			}
			if len(changed) == 0 {
				continue
			}
			at := "since the beginning"
			if !t.IsZero() {
				at = "at " + t.UTC().Format(time.RFC3339Nano)
			}
			was, is := "did not own", "owns"
			if base.Owns(s.ID, changed[0], t) {
				was, is = "owned", "does not own"
			}
			p.find(Error, "moves", "ownership of the past changes: shard %s, buckets %s %s (bucket %d: %s before, %s now); changes already loaded would count differently and pinned finance runs would stop verifying (a move's cutover must be in the future; never edit the initial assignment)",
				s.ID, registry.FormatRanges(registry.Ranges(changed)), at, changed[0], was, is)
			return
		}
	}
}

func minTime(a, b time.Time) time.Time {
	if a.Before(b) {
		return a
	}
	return b
}

func describeMove(m registry.Move) string {
	head := fmt.Sprintf("epoch %d, buckets %s, %s → %s", m.Epoch, registry.FormatRanges(m.Buckets), m.From, m.To)
	switch {
	case m.Pending():
		return head + ", pending"
	case m.Fence != nil:
		return fmt.Sprintf("%s, fenced: %s at %s (%s), %s at %s (%s), each on its own clock", head,
			m.From, m.Fence.From.At.UTC().Format(time.RFC3339Nano), m.Fence.From.LSN, m.To, m.Fence.To.At.UTC().Format(time.RFC3339Nano), m.Fence.To.LSN)
	}
	return head + " at " + m.Cutover.UTC().Format(time.RFC3339)
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
				rolling, leaves := "", "the connectors' column.include.list gains it (shardctl connectors apply)"
				if c.Adding {
					rolling = ", rolling out (adding: true)"
				}
				if c.PCI == registry.PCIDrop {
					leaves = "it never leaves the shard (pci: drop)"
				}
				p.change("table %s: column %s %s added (pci: %s)%s", t.Name, c.Name, c.Type, policy(c.PCI), rolling)
				p.change("table %s: column %s: load adds it to raw.%s (ALTER TABLE … ADD COLUMN IF NOT EXISTS; rows loaded before hold NULL); %s; dbt staging and marts carry it where their models select it", t.Name, c.Name, t.Name, leaves)
				if c.Adding {
					p.find(Warning, path, "new column %s.%s: a shard that lacks it yet lands NULL for it, named in _absent_columns; one that has it lands it %s; remove adding: true once every shard has it (docs/runbooks/schema-change.md)", t.Name, c.Name, landsAs(c.PCI))
				} else {
					p.find(Warning, path, "new column %s.%s without adding: true: every shard that lacks it refuses the table (schema drift, exit 4) until it has it; declare it adding: true while the ALTER rolls out (docs/runbooks/schema-change.md); it lands %s", t.Name, c.Name, landsAs(c.PCI))
				}
				continue
			}
			if oc.Adding && !c.Adding {
				p.change("table %s: column %s rolled out (adding: true removed): a shard that lacks it now refuses the table (exit 4)", t.Name, c.Name)
			}
			if oc.Type != c.Type {
				p.change("table %s: column %s type %s → %s", t.Name, c.Name, oc.Type, c.Type)
				p.find(Error, path+".type", "%s.%s changes type %s → %s: the landed files and raw.%s hold %s; a type change is a new column, backfilled, switched to, then the old one retired (docs/runbooks/schema-change.md)", t.Name, c.Name, oc.Type, c.Type, t.Name, oc.Type)
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
				p.change("table %s: column %s removed: no longer landed; raw.%s keeps it with the rows loaded so far; a shard that still has it reports it as undeclared (dq schema: WARN)", t.Name, oc.Name, t.Name)
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
	p.retention(base.Retention, cur.Retention)
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

// retention reports a changed retention section, and warns where a change removes
// data sooner: a shorter hot period purges raw rows at the next purge, a shorter archive
// period expires landed files at S3's next lifecycle run; neither comes back.
func (p *Plan) retention(base, cur registry.Retention) {
	tables := map[string]bool{}
	for n := range base.Tables {
		tables[n] = true
	}
	for n := range cur.Tables {
		tables[n] = true
	}
	names := []string{""}
	for n := range tables {
		names = append(names, n)
	}
	sort.Strings(names[1:])
	for _, n := range names {
		bh, ba := base.TablePeriods(n)
		ch, ca := cur.TablePeriods(n)
		path, what := "retention", "retention"
		if n != "" {
			path, what = "retention.tables."+n, "retention of "+n
		}
		if bh != ch || ba != ca {
			p.change("%s: hot %s, archive %s → hot %s, archive %s", what, bh, ba, ch, ca)
		}
		own := func(f func(registry.TableRetention) registry.Period) bool { // the table's own value, not the default's
			return n == "" || !f(base.Tables[n]).IsZero() || !f(cur.Tables[n]).IsZero()
		}
		if ch.MaxDays() < bh.MaxDays() && own(func(t registry.TableRetention) registry.Period { return t.Hot }) {
			p.find(Warning, path+".hot", "the hot period shortens from %s to %s: the next purge removes the raw rows (all but each key's latest version) of files between the two; a restore brings them back into a schema of its own", bh, ch)
		}
		if ca.MaxDays() < ba.MaxDays() && own(func(t registry.TableRetention) registry.Period { return t.Archive }) {
			p.find(Warning, path+".archive", "the archive period shortens from %s to %s: once applied (shardctl retention apply), S3 expires landed files older than %d days for good", ba, ca, ca.MaxDays())
		}
	}
	if base.ArchiveClass != cur.ArchiveClass || base.NoncurrentDays != cur.NoncurrentDays || base.AbortMultipartDays != cur.AbortMultipartDays || base.FinancePeriod() != cur.FinancePeriod() {
		p.change("retention: archive class %s, old versions %dd, incomplete uploads %dd, finance %s → %s, %dd, %dd, %s",
			base.ArchiveClass, base.NoncurrentDays, base.AbortMultipartDays, base.FinancePeriod(), cur.ArchiveClass, cur.NoncurrentDays, cur.AbortMultipartDays, cur.FinancePeriod())
	}
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

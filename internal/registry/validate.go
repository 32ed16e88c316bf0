package registry

import (
	"fmt"
	"maps"
	"net/url"
	"regexp"
	"slices"
	"time"
)

// DefaultRunbooks is monitoring.runbooks when shards.yaml does not set it.
const DefaultRunbooks = "https://github.com/shopsphere/shardflow/blob/main/docs/runbooks"

// Default returns a registry holding the defaults for every optional field. Parse
// decodes the file over it, so a default applies only where a field is absent.
func Default() *Registry {
	return &Registry{
		Version: 1,
		Routing: Routing{Function: BucketFunction, Buckets: 4096},
		Extract: Extract{
			Window:    Duration{time.Hour},
			SafetyLag: Duration{5 * time.Minute},
			PageSize:  10000,
		},
		SLA: SLA{
			CDCFreshness:   Duration{10 * time.Minute},
			FinanceReadyBy: ClockTime{6, 0},
			FinanceAlertAt: ClockTime{5, 0},
		},
		Monitoring: Monitoring{
			Runbooks:        DefaultRunbooks,
			AlertAfter:      Duration{5 * time.Minute},
			SlotRetainedWAL: 50 << 30,
			BatchLate:       Duration{2 * time.Hour},
		},
		Retention: DefaultRetention(),
	}
}

var (
	shardIDPattern = regexp.MustCompile(`^[a-z][a-z0-9_]{0,30}$`)
	identPattern   = regexp.MustCompile(`^[a-z_][a-z0-9_]{0,62}$`)
	envPattern     = regexp.MustCompile(`^[A-Z_][A-Z0-9_]*$`)
	keyIDPattern   = regexp.MustCompile(`^[a-z0-9]{1,16}$`)
	// cvvClass names columns that hold card verification codes; they are never carried.
	cvvClass = regexp.MustCompile(`(?i)(cvv|cvc|cvn|cid|cav2|security_code)`)
)

// IsIdentifier reports whether s is a plain lower-case SQL identifier (a table, column or
// schema name shards.yaml and the commands accept).
func IsIdentifier(s string) bool { return identPattern.MatchString(s) }

// ColumnTypes are the source column types a table may declare, and how they land.
var ColumnTypes = map[string]bool{
	"uuid": true, "text": true, "bigint": true, "integer": true,
	"boolean": true, "timestamptz": true, "date": true,
}

// BucketColumn is the column every table carries: the customer's bucket, written by the
// application with Bucket, read by the ownership filters.
const BucketColumn = "bucket"

// CustomerColumn is the column Bucket is computed from.
const CustomerColumn = "customer_id"

// Validate checks the registry's meaning and reports every problem at once, each with its
// field path. On success it derives the ownership history used by OwnerAt and friends.
func (r *Registry) Validate() error {
	var errs Errors
	if r.Version != 1 {
		errs.add("version", 0, "unsupported version %d (want 1)", r.Version)
	}
	if r.Fleet == "" {
		errs.add("fleet", 0, "required")
	}
	if r.Routing.Function != BucketFunction {
		errs.add("routing.function", 0, "unknown function %q (want %q)", r.Routing.Function, BucketFunction)
	}
	n := r.Routing.Buckets
	if n < 1 || n > 65536 {
		errs.add("routing.buckets", 0, "%d is out of range (want 1..65536)", n)
		n = 0
	}
	current, partitionOK := r.validateShards(n, &errs)
	r.validateMoves(n, &errs)
	r.validateTables(&errs)
	r.validateSettings(&errs)
	r.validateRetention(&errs)
	if partitionOK && len(errs) == 0 {
		r.owners = buildOwnership(r, current, &errs)
		r.validateStates(&errs)
	}
	return errs.orNil()
}

// validateShards checks ids, states, secret references and that the current bucket
// assignment is a partition of [0, n). It returns bucket → shard index.
func (r *Registry) validateShards(n int, errs *Errors) ([]int, bool) {
	if len(r.Shards) == 0 {
		errs.add("shards", 0, "at least one shard is required")
		return nil, false
	}
	owner := make([]int, n)
	for b := range owner {
		owner[b] = -1
	}
	ok := n > 0
	seen := map[string]int{}
	for i, s := range r.Shards {
		p := pathf("shards[%d]", i)
		if !shardIDPattern.MatchString(s.ID) {
			errs.add(p+".id", 0, "%q is not a shard id (lowercase letters, digits and _, starting with a letter, at most 31)", s.ID)
		}
		if j, dup := seen[s.ID]; dup {
			errs.add(p+".id", 0, "duplicate id %q (also shards[%d])", s.ID, j)
		}
		seen[s.ID] = i
		switch s.State {
		case StateOnboarding, StateActive, StateDraining, StateRetired:
		default:
			errs.add(p+".state", 0, "%q is not a state (onboarding | active | draining | retired)", s.State)
		}
		checkSecret(p+".connection.extract", s.Connection.Extract, errs)
		checkSecret(p+".connection.replication", s.Connection.Replication, errs)
		if s.Connection.Admin != (SecretRef{}) {
			checkSecret(p+".connection.admin", s.Connection.Admin, errs)
		}
		if s.Connection.Standby != (SecretRef{}) {
			checkSecret(p+".connection.standby", s.Connection.Standby, errs)
		}
		for k, rg := range s.Buckets {
			if rg.Hi >= n {
				errs.add(pathf("%s.buckets[%d]", p, k), 0, "%s is outside 0-%d", rg, n-1)
				ok = false
				continue
			}
			var clash []int
			clashWith := -1
			for b := rg.Lo; b <= rg.Hi; b++ {
				if owner[b] >= 0 && owner[b] != i {
					clash = append(clash, b)
					clashWith = owner[b]
					continue
				}
				owner[b] = i
			}
			if len(clash) > 0 {
				errs.add(p+".buckets", 0, "overlaps shards[%d] (%s) at %s", clashWith, r.Shards[clashWith].ID, FormatRanges(Ranges(clash)))
				ok = false
			}
		}
	}
	var gap []int
	for b, o := range owner {
		if o < 0 {
			gap = append(gap, b)
		}
	}
	if len(gap) > 0 {
		errs.add("shards", 0, "buckets %s are owned by no shard (every bucket 0-%d must be owned by exactly one)", FormatRanges(Ranges(gap)), n-1)
		ok = false
	}
	return owner, ok
}

func (r *Registry) validateMoves(n int, errs *Errors) {
	for i, m := range r.Moves {
		p := pathf("moves[%d]", i)
		if m.Epoch != i+1 {
			errs.add(p+".epoch", 0, "is %d, want %d (epochs number the moves 1, 2, 3, ... in order)", m.Epoch, i+1)
		}
		from, okF := r.Shard(m.From)
		to, okT := r.Shard(m.To)
		if !okF {
			errs.add(p+".from", 0, "unknown shard %q", m.From)
		}
		if !okT {
			errs.add(p+".to", 0, "unknown shard %q", m.To)
		}
		if m.From == m.To && okF {
			errs.add(p+".to", 0, "a move needs two different shards")
		}
		if okF && from.State == StateOnboarding {
			errs.add(p+".from", 0, "shard %s is onboarding and owns nothing to move", m.From)
		}
		if okT && to.State == StateRetired {
			errs.add(p+".to", 0, "shard %s is retired and cannot receive buckets", m.To)
		}
		r.validateMoveInstants(i, m, errs)
		if len(m.Buckets) == 0 {
			errs.add(p+".buckets", 0, "required")
		}
		for k, rg := range m.Buckets {
			if rg.Hi >= n {
				errs.add(pathf("%s.buckets[%d]", p, k), 0, "%s is outside 0-%d", rg, n-1)
			}
		}
	}
}

// lsnPattern is PostgreSQL's text form of a WAL position.
var lsnPattern = regexp.MustCompile(`^[0-9A-F]{1,8}/[0-9A-F]{1,8}$`)

// validateMoveInstants checks a move's cutover or fence and its place in the order of
// moves: recorded moves are in cutover order, pending moves come after every recorded
// one, and a bucket is in at most one pending move.
func (r *Registry) validateMoveInstants(i int, m Move, errs *Errors) {
	p := pathf("moves[%d]", i)
	if m.Fence != nil && !m.Cutover.IsZero() {
		errs.add(p+".cutover", 0, "set either cutover (a hand-recorded instant) or fence (written by shardctl move cutover), not both")
		return
	}
	if m.Fence != nil {
		for _, side := range []struct {
			name string
			mk   Marker
		}{{"from", m.Fence.From}, {"to", m.Fence.To}} {
			if side.mk.At.IsZero() {
				errs.add(p+".fence."+side.name+".at", 0, "required (the shard's own clock at its marker, RFC 3339)")
			}
			if !lsnPattern.MatchString(side.mk.LSN) {
				errs.add(p+".fence."+side.name+".lsn", 0, "%q is not a WAL position (like \"0/1A2B3C4\")", side.mk.LSN)
			}
		}
	}
	if m.Pending() {
		for j := i + 1; j < len(r.Moves); j++ {
			if !r.Moves[j].Pending() {
				errs.add(p, 0, "a pending move (no cutover or fence) must come after every recorded move; moves[%d] is recorded", j)
				return
			}
		}
		for j := 0; j < i; j++ {
			if o := r.Moves[j]; o.Pending() && overlaps(o.Buckets, m.Buckets) {
				errs.add(p+".buckets", 0, "moves[%d] is pending on buckets of this move too; a bucket moves once at a time", j)
			}
		}
		return
	}
	if m.Fence != nil && m.Fence.From.At.IsZero() {
		return // reported above
	}
	for j := i - 1; j >= 0; j-- {
		prev := r.Moves[j]
		if prev.Pending() {
			continue
		}
		if !m.Instant().After(prev.Instant()) {
			errs.add(p+cutoverField(m), 0, "%s is not after moves[%d]'s cutover %s", m.Instant().Format(time.RFC3339Nano), j, prev.Instant().Format(time.RFC3339Nano))
		}
		break
	}
}

func cutoverField(m Move) string {
	if m.Fence != nil {
		return ".fence.from.at"
	}
	return ".cutover"
}

func overlaps(a, b []Range) bool {
	for _, x := range a {
		for _, y := range b {
			if x.Lo <= y.Hi && y.Lo <= x.Hi {
				return true
			}
		}
	}
	return false
}

// validateStates checks that each shard's state agrees with what it owns.
func (r *Registry) validateStates(errs *Errors) {
	isFrom := map[string]bool{}
	for _, m := range r.Moves {
		isFrom[m.From] = true
	}
	for i, s := range r.Shards {
		p := pathf("shards[%d].state", i)
		owned := len(s.Buckets) > 0
		switch s.State {
		case StateActive:
			if !owned {
				errs.add(p, 0, "active shard %s owns no bucket (onboarding or retired?)", s.ID)
			}
		case StateRetired:
			if owned {
				errs.add(p, 0, "retired shard %s still owns %s (move them away first)", s.ID, FormatRanges(s.Buckets))
			}
		case StateDraining:
			if !isFrom[s.ID] {
				errs.add(p, 0, "draining shard %s is the source of no move", s.ID)
			}
		case StateOnboarding:
			if len(r.OwnedAt(s.ID, time.Time{})) > 0 {
				errs.add(p, 0, "onboarding shard %s owns buckets at epoch 0; it may only receive them through moves", s.ID)
			}
		}
	}
}

func (r *Registry) validateTables(errs *Errors) {
	if len(r.Tables) == 0 {
		errs.add("tables", 0, "at least one table is required")
	}
	seen := map[string]bool{}
	for i, t := range r.Tables {
		p := pathf("tables[%d]", i)
		if !identPattern.MatchString(t.Name) {
			errs.add(p+".name", 0, "%q is not a table name", t.Name)
		}
		if seen[t.Name] {
			errs.add(p+".name", 0, "duplicate table %q", t.Name)
		}
		seen[t.Name] = true
		cols := map[string]Column{}
		for k, c := range t.Columns {
			cp := pathf("%s.columns[%d]", p, k)
			if !identPattern.MatchString(c.Name) {
				errs.add(cp+".name", 0, "%q is not a column name", c.Name)
			}
			if _, dup := cols[c.Name]; dup {
				errs.add(cp+".name", 0, "duplicate column %q", c.Name)
			}
			cols[c.Name] = c
			if !ColumnTypes[c.Type] {
				errs.add(cp+".type", 0, "%q is not a supported type (uuid, text, bigint, integer, boolean, timestamptz, date)", c.Type)
			}
			switch c.PCI {
			case "", PCIKeep, PCIToken, PCILast4, PCIBIN, PCIDrop, PCIRedact:
			default:
				errs.add(cp+".pci", 0, "%q is not a policy (token | last4 | bin | drop | redact | keep)", c.PCI)
			}
			if cvvClass.MatchString(c.Name) && c.PCI != PCIDrop {
				errs.add(cp+".pci", 0, "%s is a card verification code and must be drop (PCI DSS 3.3.1: never stored after authorization)", c.Name)
			}
			if c.PCI != "" && c.PCI != PCIKeep && c.PCI != PCIDrop && c.Type != "text" {
				errs.add(cp+".pci", 0, "policy %s needs a text column, %s is %s", c.PCI, c.Name, c.Type)
			}
		}
		if len(t.PrimaryKey) == 0 {
			errs.add(p+".primary_key", 0, "required (the global key, without the shard)")
		}
		for k, pk := range t.PrimaryKey {
			c, ok := cols[pk]
			switch {
			case !ok:
				errs.add(pathf("%s.primary_key[%d]", p, k), 0, "column %q is not declared in columns", pk)
			case c.PCI != "" && c.PCI != PCIKeep:
				errs.add(pathf("%s.primary_key[%d]", p, k), 0, "key column %q cannot have a PCI policy", pk)
			}
		}
		need := []struct{ field, col, typ string }{
			{"watermark", t.Watermark, "timestamptz"},
			{"version", t.Version, "bigint"},
			{"columns", BucketColumn, "integer"},
		}
		for _, nd := range need {
			c, ok := cols[nd.col]
			switch {
			case nd.col == "":
				errs.add(p+"."+nd.field, 0, "required")
			case !ok:
				errs.add(p+"."+nd.field, 0, "column %q is not declared in columns", nd.col)
			case c.Type != nd.typ:
				errs.add(p+"."+nd.field, 0, "column %q must be %s, is %s", nd.col, nd.typ, c.Type)
			}
		}
		// every row needs these to be judged and keyed, so none can be missing on a shard
		required := append(append([]string(nil), t.PrimaryKey...), t.Watermark, t.Version, CustomerColumn, BucketColumn)
		for k, c := range t.Columns {
			if c.Adding && slices.Contains(required, c.Name) {
				errs.add(pathf("%s.columns[%d].adding", p, k), 0, "column %q is required on every shard (key, watermark, version, customer_id or bucket) and cannot be rolled out", c.Name)
			}
		}
	}
}

func (r *Registry) validateSettings(errs *Errors) {
	if r.Extract.Window.Duration <= 0 || r.Extract.Window.Duration%time.Minute != 0 {
		errs.add("extract.window", 0, "%s must be a positive whole number of minutes", r.Extract.Window)
	} else if (24*time.Hour)%r.Extract.Window.Duration != 0 {
		errs.add("extract.window", 0, "%s must divide a day, so windows align with midnight UTC", r.Extract.Window)
	}
	if r.Extract.SafetyLag.Duration < 0 {
		errs.add("extract.safety_lag", 0, "must not be negative")
	}
	if st := r.Extract.Start; !st.IsZero() && r.Extract.Window.Duration > 0 {
		if since := st.UTC().Sub(st.UTC().Truncate(24 * time.Hour)); since%r.Extract.Window.Duration != 0 {
			errs.add("extract.start", 0, "%s is not the start of a %s window (windows align with midnight UTC)", st.UTC().Format(time.RFC3339), r.Extract.Window)
		}
	}
	if r.Extract.PageSize < 100 || r.Extract.PageSize > 1_000_000 {
		errs.add("extract.page_size", 0, "%d is out of range (want 100..1000000)", r.Extract.PageSize)
	}
	if r.SLA.CDCFreshness.Duration <= 0 {
		errs.add("sla.cdc_freshness", 0, "must be positive")
	}
	if r.SLA.FinanceAlertAt.Minutes() >= r.SLA.FinanceReadyBy.Minutes() {
		errs.add("sla.finance_alert_at", 0, "%s must be before finance_ready_by %s", r.SLA.FinanceAlertAt, r.SLA.FinanceReadyBy)
	}
	if u, err := url.Parse(r.Monitoring.Runbooks); err != nil || (u.Scheme != "https" && u.Scheme != "http") || u.Host == "" {
		errs.add("monitoring.runbooks", 0, "%q is not an http(s) URL (the base URL of docs/runbooks)", r.Monitoring.Runbooks)
	}
	if r.Monitoring.AlertAfter.Duration < 0 {
		errs.add("monitoring.alert_after", 0, "must not be negative")
	}
	if r.Monitoring.SlotRetainedWAL <= 0 {
		errs.add("monitoring.slot_retained_wal", 0, "must be positive")
	}
	if r.Monitoring.BatchLate.Duration <= r.Extract.Window.Duration {
		errs.add("monitoring.batch_late", 0, "%s must be longer than extract.window %s (the latest loaded window ends up to a window ago when all is well)", r.Monitoring.BatchLate, r.Extract.Window)
	}
	if !keyIDPattern.MatchString(r.Tokenizer.KeyID) {
		errs.add("tokenizer.key_id", 0, "%q is not a key id (1-16 lowercase letters and digits)", r.Tokenizer.KeyID)
	}
	checkSecret("tokenizer.key", r.Tokenizer.Key, errs)
	if len(r.Environments) == 0 {
		errs.add("environments", 0, "at least one environment is required (local, production, ...)")
	}
	for _, name := range slices.Sorted(maps.Keys(r.Environments)) {
		e := r.Environments[name]
		p := "environments." + name
		if e == nil {
			errs.add(p, 0, "empty environment")
			continue
		}
		for field, v := range map[string]string{"pushgateway_url": e.Monitoring.Pushgateway, "alertmanager_url": e.Monitoring.Alertmanager} {
			if u, err := url.Parse(v); v != "" && (err != nil || (u.Scheme != "https" && u.Scheme != "http") || u.Host == "") {
				errs.add(p+".monitoring."+field, 0, "%q is not an http(s) URL", v)
			}
		}
		switch e.ObjectStore.Kind {
		case "dir":
			if e.ObjectStore.Path == "" {
				errs.add(p+".object_store.path", 0, "required for kind dir")
			}
		case "s3":
			if e.ObjectStore.Bucket == "" {
				errs.add(p+".object_store.bucket", 0, "required for kind s3")
			}
			if e.ObjectStore.Region == "" {
				errs.add(p+".object_store.region", 0, "required for kind s3")
			}
		default:
			errs.add(p+".object_store.kind", 0, "%q is not a kind (dir | s3)", e.ObjectStore.Kind)
		}
		switch e.Warehouse.Kind {
		case "duckdb":
			if e.Warehouse.Path == "" {
				errs.add(p+".warehouse.path", 0, "required for kind duckdb")
			}
		case "snowflake":
			checkSecret(p+".warehouse.dsn", e.Warehouse.DSN, errs)
			for _, f := range [][2]string{{"database", e.Warehouse.Database}, {"schema", e.Warehouse.Schema}, {"stage", e.Warehouse.Stage}} {
				if f[1] == "" {
					errs.add(p+".warehouse."+f[0], 0, "required for kind snowflake")
				}
			}
		default:
			errs.add(p+".warehouse.kind", 0, "%q is not a kind (duckdb | snowflake)", e.Warehouse.Kind)
		}
		switch e.Airflow.Target {
		case "local":
		case "k8s":
			if e.Airflow.Image == "" {
				errs.add(p+".airflow.image", 0, "required for target k8s")
			}
			if e.Airflow.Namespace == "" {
				errs.add(p+".airflow.namespace", 0, "required for target k8s")
			}
		default:
			errs.add(p+".airflow.target", 0, "%q is not a target (local | k8s)", e.Airflow.Target)
		}
	}
}

func checkSecret(path string, s SecretRef, errs *Errors) {
	if s.Env == "" {
		errs.add(path+".env", 0, "required: the environment variable that holds the secret")
	} else if !envPattern.MatchString(s.Env) {
		errs.add(path+".env", 0, "%q is not an environment variable name", s.Env)
	}
}

func pathf(format string, args ...any) string { return fmt.Sprintf(format, args...) }

// Package registry reads and validates shards.yaml, the one file that describes the
// shard fleet: routing (customer_id → bucket), shards and the buckets they own,
// the history of bucket moves (ownership epochs), the tables and their PCI policy,
// extraction settings, SLAs and the targets of each environment.
//
// The flow is Parse(io.Reader) → (*Registry).Validate. Parse is strict: unknown keys,
// wrong types and plaintext secrets are reported with their field path. Validate
// reports every semantic problem at once, each naming its field path. Nothing ever
// falls back to a default on a bad value; defaults apply only to absent fields.
package registry

import (
	"fmt"
	"time"
)

// Registry is a parsed shards.yaml.
type Registry struct {
	Version      int                     `yaml:"version"`
	Fleet        string                  `yaml:"fleet"`
	Routing      Routing                 `yaml:"routing"`
	Shards       []Shard                 `yaml:"shards"`
	Moves        []Move                  `yaml:"moves"`
	Tables       []Table                 `yaml:"tables"`
	Extract      Extract                 `yaml:"extract"`
	SLA          SLA                     `yaml:"sla"`
	Monitoring   Monitoring              `yaml:"monitoring"`
	Tokenizer    Tokenizer               `yaml:"tokenizer"`
	Retention    Retention               `yaml:"retention"`
	Environments map[string]*Environment `yaml:"environments"`

	// derived by Validate
	owners *ownership
}

// Routing says how a customer maps to a bucket. Function is fixed to BucketFunction;
// the field exists so a future function is a visible, reviewed change.
type Routing struct {
	Function string `yaml:"function"`
	Buckets  int    `yaml:"buckets"`
}

// ShardState is the lifecycle of a shard.
type ShardState string

// Shard states.
const (
	StateOnboarding ShardState = "onboarding" // extracted, but owns no bucket until a move's cutover
	StateActive     ShardState = "active"     // owns buckets
	StateDraining   ShardState = "draining"   // the source of at least one move
	StateRetired    ShardState = "retired"    // owns nothing; kept for lineage and reproducibility
)

// Shard is one PostgreSQL cluster of the fleet.
type Shard struct {
	ID         string     `yaml:"id"`
	State      ShardState `yaml:"state"`
	Connection Connection `yaml:"connection"`
	// Buckets are the ranges this shard owns after the last move in Moves.
	Buckets []Range `yaml:"buckets"`
}

// Connection names the secrets that hold a shard's connection strings. It never holds
// a credential itself.
type Connection struct {
	Extract     SecretRef `yaml:"extract"`     // read-only role used by extract-window and dq
	Replication SecretRef `yaml:"replication"` // replication role used by Debezium
	// Admin is the privileged role `shardctl move` uses on the shard: publications and
	// subscriptions, the fence, cleanup deletes (superuser, rds_superuser on RDS).
	// Optional: only moves need it.
	Admin SecretRef `yaml:"admin,omitempty"`
	// Standby is a hot standby (a physical streaming replica) of the shard, extract
	// role, that extract-window reads closed windows from instead of the primary; the
	// window's closure is still judged on the primary, and the standby is read only
	// once it has replayed past that check (decisions/0026). Optional.
	Standby SecretRef `yaml:"standby,omitempty"`
}

// SecretRef points to a secret: an environment variable for the processes started
// here, and a Kubernetes secret (name and key) for the task pods.
type SecretRef struct {
	Env       string `yaml:"env"`
	K8sSecret string `yaml:"k8s_secret"`
	K8sKey    string `yaml:"k8s_key"`
}

// Move transfers buckets from one shard to another (docs/decisions/0017). A move is
// pending from its declaration (`shardctl move plan --write`) until `shardctl move
// cutover` records its Fence; a move recorded by hand before fences existed carries one
// Cutover instant instead. Exactly one of Cutover and Fence is set on a recorded move.
type Move struct {
	Epoch   int       `yaml:"epoch"`
	Buckets []Range   `yaml:"buckets"`
	From    string    `yaml:"from"`
	To      string    `yaml:"to"`
	Cutover time.Time `yaml:"cutover,omitempty"`
	Fence   *Fence    `yaml:"fence,omitempty"`
}

// Fence is what the move tool wrote on each shard at the switch: the source's marker
// (after its last write to the buckets committed) and the target's (before its first),
// each an instant of that shard's own clock and a position in its WAL.
type Fence struct {
	From Marker `yaml:"from"`
	To   Marker `yaml:"to"`
}

// Marker is one shard's fence marker: At on the shard's clock, LSN in its WAL
// (PostgreSQL's "X/Y" text form).
type Marker struct {
	At  time.Time `yaml:"at"`
	LSN string    `yaml:"lsn"`
}

// Pending reports whether the move is declared but not recorded yet.
func (m Move) Pending() bool { return m.Fence == nil && m.Cutover.IsZero() }

// Instant is the move's cutover: the source's fence marker, else the hand-recorded
// Cutover; zero while pending. Epochs and the order of moves go by it.
func (m Move) Instant() time.Time {
	if m.Fence != nil {
		return m.Fence.From.At
	}
	return m.Cutover
}

// SourceEnd is where the source's ownership of the buckets ends, on its own clock.
func (m Move) SourceEnd() time.Time { return m.Instant() }

// TargetBegin is where the target's ownership begins, on its own clock.
func (m Move) TargetBegin() time.Time {
	if m.Fence != nil {
		return m.Fence.To.At
	}
	return m.Cutover
}

// Contains reports whether the move moves bucket b.
func (m Move) Contains(b int) bool {
	for _, rg := range m.Buckets {
		if rg.Contains(b) {
			return true
		}
	}
	return false
}

// Table is a source table extracted from every shard.
type Table struct {
	Name       string   `yaml:"name"`
	PrimaryKey []string `yaml:"primary_key"` // the global key; never includes the shard
	Watermark  string   `yaml:"watermark"`   // set by the shard to the writing transaction's start time
	Version    string   `yaml:"version"`     // row version, incremented on every update
	Columns    []Column `yaml:"columns"`
}

// Column is a source column with its type and PCI policy.
type Column struct {
	Name string    `yaml:"name"`
	Type string    `yaml:"type"`
	PCI  PCIPolicy `yaml:"pci"`
	// Adding marks a column being rolled out to the shards (docs/runbooks/schema-change.md):
	// a shard that lacks it yet lands NULL for it, marked in the row's _absent_columns,
	// instead of refusing the table. Without it, a declared column missing on a shard is
	// a drop or a rename and is refused (exit 4). Remove it once every shard has the
	// column (dq's schema check passes on every shard).
	Adding bool `yaml:"adding,omitempty"`
}

// PCIPolicy says what happens to a column's value before it lands.
type PCIPolicy string

// PCI policies. An absent policy means keep.
const (
	PCIKeep  PCIPolicy = "keep"
	PCIToken PCIPolicy = "token" // keyed HMAC-SHA256 token; equal values give equal tokens
	PCILast4 PCIPolicy = "last4" // the last four digits only
	PCIBIN   PCIPolicy = "bin"   // the first six digits only
	PCIDrop  PCIPolicy = "drop"  // never carried: not extracted, not in CDC, not landed
	// PCIRedact is for free text people type into (an order note): every card-number-like
	// substring is replaced in place by its token, the rest of the text lands as typed.
	PCIRedact PCIPolicy = "redact"
)

// Extract holds the batch extraction settings.
type Extract struct {
	Window    Duration `yaml:"window"`     // length of one window
	SafetyLag Duration `yaml:"safety_lag"` // a window [t0,t1) is closed only when t1 <= now - SafetyLag
	PageSize  int      `yaml:"page_size"`  // rows per keyset page
	// Start is the first window the hourly DAG runs. With it, Airflow runs every window
	// from it on, also those it missed while down or paused (catchup); without it, only
	// windows from the DAG's deployment on, and a missed one needs a backfill.
	Start time.Time `yaml:"start"`
}

// SLA holds the service levels the pipeline is judged by.
type SLA struct {
	CDCFreshness   Duration  `yaml:"cdc_freshness"`
	FinanceReadyBy ClockTime `yaml:"finance_ready_by"` // UTC
	FinanceAlertAt ClockTime `yaml:"finance_alert_at"` // UTC; must be before FinanceReadyBy
}

// Monitoring holds the alert thresholds beside the SLAs; `shardctl gen-monitoring`
// renders the Prometheus rules and the dashboard from both (docs/monitoring.md).
type Monitoring struct {
	// Runbooks is the base URL of docs/runbooks; each alert links <runbooks>/alerts.md#<alert, lower case>.
	Runbooks string `yaml:"runbooks"`
	// AlertAfter is how long a condition must hold before it alerts (the rules' "for").
	AlertAfter Duration `yaml:"alert_after"`
	// SlotRetainedWAL is the WAL a replication slot may keep on its shard before it
	// alerts (a slot that keeps WAL without bound fills the shard's disk).
	SlotRetainedWAL ByteSize `yaml:"slot_retained_wal"`
	// BatchLate is how long after a window's end it may stay not extracted and loaded.
	BatchLate Duration `yaml:"batch_late"`
}

// Tokenizer configures the keyed hash used for PCI columns.
type Tokenizer struct {
	KeyID string    `yaml:"key_id"`
	Key   SecretRef `yaml:"key"`
}

// Environment is the set of targets one deployment uses.
type Environment struct {
	ObjectStore ObjectStore       `yaml:"object_store"`
	Warehouse   Warehouse         `yaml:"warehouse"`
	Kafka       Kafka             `yaml:"kafka"`
	Airflow     Airflow           `yaml:"airflow"`
	Monitoring  MonitoringTargets `yaml:"monitoring"`
}

// MonitoringTargets are an environment's monitoring endpoints. Both are optional: without
// a Pushgateway the tasks push no metrics, without an Alertmanager the Airflow callbacks
// only log.
type MonitoringTargets struct {
	// Pushgateway is where tasks push the result of each run (rows, duration, the
	// window they finished, their exit code).
	Pushgateway string `yaml:"pushgateway_url"`
	// Alertmanager receives the alerts Airflow's callbacks raise.
	Alertmanager string `yaml:"alertmanager_url"`
}

// ObjectStore is where landed files go: a directory or an S3 bucket.
type ObjectStore struct {
	Kind     string `yaml:"kind"` // dir | s3
	Path     string `yaml:"path"` // dir: the root directory
	Bucket   string `yaml:"bucket"`
	Prefix   string `yaml:"prefix"`
	Region   string `yaml:"region"`
	Endpoint string `yaml:"endpoint"` // s3: a non-AWS endpoint (the local S3 server)
}

// Warehouse is where raw tables are loaded: DuckDB locally, Snowflake in production.
type Warehouse struct {
	Kind     string    `yaml:"kind"` // duckdb | snowflake
	Path     string    `yaml:"path"` // duckdb: the database file
	DSN      SecretRef `yaml:"dsn"`  // snowflake: the gosnowflake DSN
	Database string    `yaml:"database"`
	Schema   string    `yaml:"schema"`
	Stage    string    `yaml:"stage"` // snowflake: the external stage over the landing bucket
}

// Kafka is the CDC transport and the Kafka Connect cluster running Debezium.
type Kafka struct {
	Brokers     []string `yaml:"brokers"`
	TopicPrefix string   `yaml:"topic_prefix"`
	ConnectURL  string   `yaml:"connect_url"`
}

// Airflow says how DAGs are rendered and where the REST API is.
type Airflow struct {
	Target    string    `yaml:"target"` // local | k8s
	URL       string    `yaml:"url"`
	Image     string    `yaml:"image"`     // k8s: the task image
	Namespace string    `yaml:"namespace"` // k8s: where task pods run
	Token     SecretRef `yaml:"token"`
}

// Shard returns the shard with id, or false.
func (r *Registry) Shard(id string) (Shard, bool) {
	for _, s := range r.Shards {
		if s.ID == id {
			return s, true
		}
	}
	return Shard{}, false
}

// Table returns the table named name, or false.
func (r *Registry) Table(name string) (Table, bool) {
	for _, t := range r.Tables {
		if t.Name == name {
			return t, true
		}
	}
	return Table{}, false
}

// Environment returns the named environment or an error naming the ones defined.
func (r *Registry) Environment(name string) (*Environment, error) {
	if e, ok := r.Environments[name]; ok {
		return e, nil
	}
	names := make([]string, 0, len(r.Environments))
	for n := range r.Environments {
		names = append(names, n)
	}
	return nil, fmt.Errorf("environment %q is not defined in shards.yaml (defined: %v)", name, names)
}

// Column returns the named column, or false.
func (t Table) Column(name string) (Column, bool) {
	for _, c := range t.Columns {
		if c.Name == name {
			return c, true
		}
	}
	return Column{}, false
}

// Landed returns the columns that are carried past the tokenizer: every column
// except those whose policy is drop.
func (t Table) Landed() []Column {
	out := make([]Column, 0, len(t.Columns))
	for _, c := range t.Columns {
		if c.PCI != PCIDrop {
			out = append(out, c)
		}
	}
	return out
}

// Dropped returns the names of the columns that are never carried (policy drop).
func (t Table) Dropped() []string {
	var out []string
	for _, c := range t.Columns {
		if c.PCI == PCIDrop {
			out = append(out, c.Name)
		}
	}
	return out
}

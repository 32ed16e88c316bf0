package capacity

import (
	"fmt"
	"sort"
)

// Kind says where an input comes from. Every figure the plan uses is one of these, and
// is printed with it.
type Kind string

// Kinds of input.
const (
	Brief      Kind = "brief"         // the brief's scale requirements (/work/shared/BRIEF.md)
	Measured   Kind = "measured here" // the rates file: a benchmark of this repository, on this machine
	Vendor     Kind = "vendor doc"    // a vendor's published figure, with its page
	Registry   Kind = "shards.yaml"   // the registry the plan is computed from
	Generated  Kind = "generated"     // what the generators render from the registry (DAGs, connector configs)
	Assumption Kind = "assumption"    // a sizing choice of this plan, stated so it can be argued with
)

// Input is one figure the plan is computed from: Value in Unit, of Kind, with Source
// saying exactly where (a page, a benchmark and its run, a registry field).
type Input struct {
	Name   string
	Value  float64
	Unit   string
	Kind   Kind
	Source string
	// Text, when set, is the input's value as a word (a storage class), not a number.
	Text string
}

// Display is the input's value with its unit.
func (in Input) Display() string {
	if in.Text != "" {
		return in.Text
	}
	return num(in.Value) + " " + in.Unit
}

// Short is the input as a line of the plan prints it beside a value: "45,000 writes/s
// (brief)".
func (in Input) Short() string {
	return fmt.Sprintf("%s = %s (%s)", in.Name, in.Display(), in.Kind)
}

// BriefInputs are the brief's load figures ("Scale Requirements").
var BriefInputs = []Input{
	{Name: "peak_writes_per_s", Value: 45_000, Unit: "writes/s", Kind: Brief, Source: "brief, Scale Requirements: operational traffic 45K writes/sec peak"},
	{Name: "peak_reads_per_s", Value: 8_000, Unit: "reads/s", Kind: Brief, Source: "brief, Scale Requirements: 8K reads/sec peak"},
	{Name: "orders_per_year", Value: 2.5e9, Unit: "orders/year", Kind: Brief, Source: "brief, Scale Requirements: 2.5B orders/year"},
	{Name: "change_data_per_month", Value: 12, Unit: "TB/month", Kind: Brief, Source: "brief, Scale Requirements: 12 TB raw change data/month (taken as the bytes Kafka holds and the bytes landed, as docs/retention.md does: the ratio is not measured here)"},
	{Name: "shards_now", Value: 16, Unit: "shards", Kind: Brief, Source: "brief: initial shard count 16 PostgreSQL shards"},
	{Name: "shards_in_a_year", Value: 64, Unit: "shards", Kind: Brief, Source: "brief: growing to 64 within 12 months"},
}

// Vendor pages the figures below were read from (docs corpus, 2026-12).
const (
	mskBestPractices = "https://docs.aws.amazon.com/msk/latest/developerguide/bestpractices.html"
	mskQuota         = "https://docs.aws.amazon.com/msk/latest/developerguide/limits.html"
	mskThroughput    = "https://docs.aws.amazon.com/msk/latest/developerguide/msk-provision-throughput-management.html"
	kafkaConfig      = "https://kafka.apache.org/documentation/#configuration"
	debeziumPG       = "https://debezium.io/documentation/reference/stable/connectors/postgresql.html"
	snowflakeWH      = "https://docs.snowflake.com/user-guide/warehouses-overview"
	s3Pricing        = "https://aws.amazon.com/s3/pricing/"
)

// VendorInputs are published figures of the services the production stack runs on.
var VendorInputs = []Input{
	{Name: "kafka_replication_factor", Value: 3, Unit: "replicas", Kind: Vendor, Source: "vendor doc: " + mskBestPractices + " (replication factor 3 on a three-AZ cluster; the Connect manifest's storage topics use 3)"},
	{Name: "msk_partitions_per_broker", Value: 1_000, Unit: "partition replicas", Kind: Vendor, Source: "vendor doc: " + mskBestPractices + " (recommended partitions per broker, leaders and followers, kafka.m5.large / kafka.m7g.large)"},
	{Name: "msk_storage_per_broker", Value: 16_384, Unit: "GiB", Kind: Vendor, Source: "vendor doc: " + mskQuota + " (Standard broker: maximum storage per broker)"},
	{Name: "msk_volume_throughput", Value: 250, Unit: "MiB/s", Kind: Vendor, Source: "vendor doc: " + mskThroughput + " (default storage throughput of a broker volume; provisioned throughput needs kafka.m5.4xlarge+)"},
	{Name: "kafka_retention_hours", Value: 168, Unit: "h", Kind: Vendor, Source: "vendor doc: " + kafkaConfig + " (log.retention.hours default 168; the connectors' topic.creation settings set no retention.ms, test/harness/cdc/stack.sh sets the same)"},
	{Name: "connect_internal_partitions", Value: 31, Unit: "partitions", Kind: Vendor, Source: "vendor doc: " + kafkaConfig + " (Connect's offset.storage.partitions 25 + status.storage.partitions 5 + the config topic's 1)"},
	{Name: "consumer_offsets_partitions", Value: 50, Unit: "partitions", Kind: Vendor, Source: "vendor doc: " + kafkaConfig + " (offsets.topic.num.partitions default 50)"},
	{Name: "debezium_tasks_per_connector", Value: 1, Unit: "tasks", Kind: Vendor, Source: "vendor doc: " + debeziumPG + " (the PostgreSQL connector always uses a single task, one replication slot)"},
	{Name: "snowflake_billing_minimum", Value: 60, Unit: "s", Kind: Vendor, Source: "vendor doc: " + snowflakeWH + " (per-second billing, 60 s minimum each time a warehouse starts)"},
	{Name: "s3_standard_first_50tb", Value: 0.023, Unit: "$/GB-month", Kind: Vendor, Source: "vendor doc: " + s3Pricing + " (us-east-1, as read 2026-12-03 for docs/retention.md)"},
	{Name: "s3_standard_next_450tb", Value: 0.022, Unit: "$/GB-month", Kind: Vendor, Source: "vendor doc: " + s3Pricing + " (us-east-1, as read 2026-12-03)"},
	{Name: "s3_standard_over_500tb", Value: 0.021, Unit: "$/GB-month", Kind: Vendor, Source: "vendor doc: " + s3Pricing + " (us-east-1, as read 2026-12-03)"},
	{Name: "s3_glacier", Value: 0.0036, Unit: "$/GB-month", Kind: Vendor, Source: "vendor doc: " + s3Pricing + " (Glacier Flexible Retrieval, us-east-1, as read 2026-12-03)"},
	{Name: "s3_deep_archive", Value: 0.00099, Unit: "$/GB-month", Kind: Vendor, Source: "vendor doc: " + s3Pricing + " (Glacier Deep Archive, us-east-1, as read 2026-12-03)"},
}

// WarehouseSizes are Snowflake's standard (Gen1) warehouse sizes with their credits per
// hour, smallest first (vendor doc: the warehouses overview).
var WarehouseSizes = []struct {
	Name    string
	Credits float64
}{
	{"X-Small", 1}, {"Small", 2}, {"Medium", 4}, {"Large", 8}, {"X-Large", 16},
	{"2X-Large", 32}, {"3X-Large", 64}, {"4X-Large", 128},
}

// Assumptions are the plan's own sizing choices.
var Assumptions = []Input{
	{Name: "headroom", Value: 1.5, Unit: "x", Kind: Assumption, Source: "assumption: every throughput and storage figure is sized for 1.5x the brief's peak (a component runs at most at 2/3 of what was measured)"},
	{Name: "days_per_month", Value: 30.4375, Unit: "days", Kind: Assumption, Source: "assumption: a calendar month's average, 365.25 / 12 (docs/retention.md)"},
	{Name: "cores_per_replica", Value: 2, Unit: "cores", Kind: Assumption, Source: "assumption: a tokenize cdc replica, a Connect worker and an X-Small load get the 2 cores the rates were measured on (the measurements ran the whole stack on those 2 cores: conservative)"},
	{Name: "min_connect_workers", Value: 2, Unit: "workers", Kind: Assumption, Source: "assumption: two workers at least, so a restart moves the tasks (docker/connect/strimzi/kafka-connect.yaml: replicas 2)"},
	{Name: "gb_per_tb", Value: 1024, Unit: "GB/TB", Kind: Assumption, Source: "assumption: binary TB, as docs/retention.md's costs"},
}

// Need is a measured figure the plan reads from the rates file, and the benchmark that
// measures it.
type Need struct {
	Name  string
	Bench string
	What  string
}

// Needed lists the rates Compute reads.
var Needed = []Need{
	{"extract_rows_per_s", "make bench-batch", "extract-window rows/s on one shard and window, 1x table"},
	{"extract_rows_per_s_10x", "make bench-batch", "extract-window rows/s on the same window, table 10x"},
	{"cdc_events_per_s", "make bench-cdc", "Debezium → Kafka → tokenize cdc events/s, landed and committed, one consumer replica"},
	{"debezium_events_per_s", "make bench-cdc", "Debezium → Kafka events/s, one connector task"},
	{"load_rows_per_s", "make bench-load", "load rows/s into the warehouse stand-in (DuckDB)"},
}

// measuredInputs turns the rates Compute needs into inputs, or names every one that is
// missing with the benchmark that measures it.
func measuredInputs(rs Rates) ([]Input, error) {
	var out []Input
	var missing []string
	for _, n := range Needed {
		r, ok := rs[n.Name]
		if !ok || r.Value <= 0 {
			missing = append(missing, fmt.Sprintf("%s (%s; measured by `%s`)", n.Name, n.What, n.Bench))
			continue
		}
		src := fmt.Sprintf("measured here: %s on %s, %s", r.Bench, orUnknown(r.Machine), r.At)
		if r.Reference > 0 {
			src += fmt.Sprintf("; reference in the same run %s %s", num(r.Reference), r.Unit)
		}
		if r.Note != "" {
			src += "; " + r.Note
		}
		out = append(out, Input{Name: n.Name, Value: r.Value, Unit: r.Unit, Kind: Measured, Source: src})
	}
	if len(missing) > 0 {
		sort.Strings(missing)
		return nil, fmt.Errorf("%w: %v", ErrMissingRate, missing)
	}
	return out, nil
}

func orUnknown(s string) string {
	if s == "" {
		return "an unnamed machine"
	}
	return s
}

package capacity

import (
	"bytes"
	"errors"
	"fmt"
	"math"
	"regexp"
	"strconv"
	"strings"
	"time"

	"github.com/shopsphere/shardflow/internal/connector"
	"github.com/shopsphere/shardflow/internal/dagen"
	"github.com/shopsphere/shardflow/internal/registry"
)

// ProductionEnv is the registry environment whose DAGs and connectors the plan sizes.
const ProductionEnv = "production"

// Sentinel errors.
var (
	ErrMissingRate = errors.New("rates file lacks measured figures")
	ErrShards      = errors.New("shard count")
)

// Plan is the sizing of a fleet at one or more shard counts. Every Line has one value
// per shard count (Shards, in order) and names the Inputs it was computed from.
type Plan struct {
	Fleet    string
	Tables   []string
	Shards   []int
	Inputs   []Input // every input any line names, in the order first named
	Sections []Section
}

// Section is a component of the deployment (Kafka, Connect, ...).
type Section struct {
	Title string
	Lines []Line
}

// Line is one computed figure: What it is, its value at each shard count, How it was
// computed, and the names of the inputs it used (Plan.Input).
type Line struct {
	What   string
	Values []string
	How    string
	Inputs []string
}

// Input returns the input named name.
func (p *Plan) Input(name string) (Input, bool) {
	for _, in := range p.Inputs {
		if in.Name == name {
			return in, true
		}
	}
	return Input{}, false
}

// fleetAt is what the generators make of the registry at one shard count.
type fleetAt struct {
	n                  int
	reg                *registry.Registry
	topicsPerShard     int // data topics + the signal table's + Debezium's heartbeat topic
	partitionsPerTopic int
	tasksPerConnector  int
	hourlyPerTable     int // tasks of a shard's table in the hourly DAG (extract, load, dq)
	hourlyFleetTasks   int // fleet-wide tasks of the hourly DAG
	hourlyFleetPods    int // of which pods (the rest are sensors)
	hourlyMaxRuns      int // max_active_runs of the hourly DAG (catch-up)
	cdcPods            int // pods of one CDC micro-batch run
	cdcEvery           time.Duration
	financePerShard    int // sensors per shard of the finance DAG
	financePods        int
	retentionPods      int
}

// Compute sizes the fleet described by base (a shards.yaml) at each shard count: the
// registry is re-derived with n shards (registry.Derive, as `shardctl init --shards n`
// does), its production DAGs and connector configs rendered, and the brief's load, the
// measured rates and the vendor figures applied. It reads no file and no clock.
func Compute(base []byte, rates Rates, shards []int) (*Plan, error) {
	if len(shards) == 0 {
		return nil, fmt.Errorf("%w: give at least one", ErrShards)
	}
	measured, err := measuredInputs(rates)
	if err != nil {
		return nil, err
	}
	var fleets []*fleetAt
	for _, n := range shards {
		if n < 1 || n > 1000 {
			return nil, fmt.Errorf("%w %d: want 1-1000", ErrShards, n)
		}
		f, err := generate(base, n)
		if err != nil {
			return nil, fmt.Errorf("capacity at %d shards: %w", n, err)
		}
		fleets = append(fleets, f)
	}
	c := &computer{inputs: map[string]Input{}}
	for _, set := range [][]Input{BriefInputs, measured, VendorInputs, Assumptions} {
		for _, in := range set {
			c.inputs[in.Name] = in
		}
	}
	c.registryInputs(fleets[0])
	p := &Plan{Fleet: fleets[0].reg.Fleet, Shards: shards}
	for _, t := range fleets[0].reg.Tables {
		p.Tables = append(p.Tables, t.Name)
	}
	if err := c.build(p, fleets); err != nil {
		return nil, err
	}
	for _, name := range c.order {
		p.Inputs = append(p.Inputs, c.inputs[name])
	}
	return p, nil
}

// generate derives the registry at n shards and reads, from what dagen and connector
// render for its production environment, the counts the plan needs.
func generate(base []byte, n int) (*fleetAt, error) {
	text, err := registry.Derive(base, registry.DeriveOptions{Shards: n})
	if err != nil {
		return nil, err
	}
	reg, err := registry.Check(bytes.NewReader(text))
	if err != nil {
		return nil, err
	}
	env, err := reg.Environment(ProductionEnv)
	if err != nil {
		return nil, err
	}
	f := &fleetAt{n: n, reg: reg}

	conf, err := connector.Render(reg, env.Kafka.TopicPrefix, reg.Shards[0])
	if err != nil {
		return nil, err
	}
	if f.tasksPerConnector, err = strconv.Atoi(conf["tasks.max"]); err != nil {
		return nil, fmt.Errorf("connector tasks.max %q: %w", conf["tasks.max"], err)
	}
	if f.partitionsPerTopic, err = strconv.Atoi(conf["topic.creation.default.partitions"]); err != nil {
		return nil, fmt.Errorf("connector topic.creation.default.partitions %q: %w", conf["topic.creation.default.partitions"], err)
	}
	f.topicsPerShard = len(strings.Split(conf["table.include.list"], ","))
	if conf["heartbeat.interval.ms"] != "" && conf["heartbeat.interval.ms"] != "0" {
		f.topicsPerShard++ // Debezium's __debezium-heartbeat.<topic.prefix>
	}

	set, err := dagen.Render(reg, dagen.DefaultOptions(), "dags")
	if err != nil {
		return nil, err
	}
	dag := func(kind string) (head, body string, err error) {
		path := ProductionEnv + "/" + kind + ".py"
		for _, file := range set.Files {
			if file.Path == path {
				h, b, ok := strings.Cut(string(file.Data), "\nwith DAG(")
				if !ok {
					return "", "", fmt.Errorf("rendered %s: no `with DAG(`", path)
				}
				return h, b, nil
			}
		}
		return "", "", fmt.Errorf("dagen rendered no %s", path)
	}
	calls := func(s string, what ...string) int {
		k := 0
		for _, w := range what {
			k += strings.Count(s, w)
		}
		return k
	}
	head, body, err := dag(dagen.Hourly)
	if err != nil {
		return nil, err
	}
	f.hourlyPerTable = calls(head, "sf.task(")
	f.hourlyFleetPods = calls(body, "sf.task(", "sf.dbt(")
	f.hourlyFleetTasks = f.hourlyFleetPods + calls(body, "task_id=")
	if m := regexp.MustCompile(`max_active_runs=(\d+)`).FindStringSubmatch(body); m != nil {
		f.hourlyMaxRuns, _ = strconv.Atoi(m[1])
	}
	if f.hourlyPerTable == 0 || f.hourlyMaxRuns == 0 {
		return nil, fmt.Errorf("rendered %s DAG: no per-table task or max_active_runs found (did its template change? update internal/capacity)", dagen.Hourly)
	}
	_, body, err = dag(dagen.CDC)
	if err != nil {
		return nil, err
	}
	f.cdcPods = calls(body, "sf.task(", "sf.dbt(")
	m := regexp.MustCompile(`DeltaTriggerTimetable\(timedelta\(seconds=(\d+)\)\)`).FindStringSubmatch(body)
	if m == nil {
		return nil, fmt.Errorf("rendered %s DAG: no DeltaTriggerTimetable schedule", dagen.CDC)
	}
	secs, _ := strconv.Atoi(m[1])
	f.cdcEvery = time.Duration(secs) * time.Second
	_, body, err = dag(dagen.FinanceDaily)
	if err != nil {
		return nil, err
	}
	f.financePerShard = calls(body, "ExternalTaskSensor(")
	f.financePods = calls(body, "sf.task(", "sf.dbt(")
	_, body, err = dag(dagen.Retention)
	if err != nil {
		return nil, err
	}
	f.retentionPods = calls(body, "sf.task(", "sf.dbt(")
	return f, nil
}

// computer collects the inputs the lines name, in the order they are first named.
type computer struct {
	inputs map[string]Input
	order  []string
	seen   map[string]bool
}

func (c *computer) v(name string) float64 {
	in, ok := c.inputs[name]
	if !ok {
		panic("capacity: no input " + name) // a programming error: every name is declared above
	}
	return in.Value
}

func (c *computer) use(names []string) {
	if c.seen == nil {
		c.seen = map[string]bool{}
	}
	for _, n := range names {
		if _, ok := c.inputs[n]; !ok {
			panic("capacity: line names unknown input " + n)
		}
		if !c.seen[n] {
			c.seen[n] = true
			c.order = append(c.order, n)
		}
	}
}

// registryInputs adds the inputs read from shards.yaml and from the generated
// artifacts (the same at every shard count: the counts per shard and per table).
func (c *computer) registryInputs(f *fleetAt) {
	r := f.reg
	add := func(in Input) { c.inputs[in.Name] = in }
	add(Input{Name: "tables", Value: float64(len(r.Tables)), Unit: "tables", Kind: Registry, Source: "shards.yaml: tables"})
	add(Input{Name: "extract_window", Value: r.Extract.Window.Duration.Seconds(), Unit: "s", Kind: Registry, Source: "shards.yaml: extract.window (" + r.Extract.Window.String() + "; one hourly DAG run per window)"})
	add(Input{Name: "retention_hot_days", Value: float64(r.Retention.Hot.MaxDays()), Unit: "days", Kind: Registry, Source: "shards.yaml: retention.hot " + r.Retention.Hot.String() + " (S3 counts it as its longest calendar reading, docs/retention.md)"})
	add(Input{Name: "retention_hot_months", Value: float64(r.Retention.Hot.Years*12 + r.Retention.Hot.Months), Unit: "months", Kind: Registry, Source: "shards.yaml: retention.hot " + r.Retention.Hot.String() + " (raw rows in the warehouse)"})
	add(Input{Name: "retention_archive_months", Value: float64(r.Retention.Archive.Years*12+r.Retention.Archive.Months) + float64(r.Retention.Archive.Days)/30.4375, Unit: "months", Kind: Registry, Source: "shards.yaml: retention.archive " + r.Retention.Archive.String()})
	add(Input{Name: "archive_class", Text: r.Retention.ArchiveClass, Kind: Registry, Source: "shards.yaml: retention.archive_class " + r.Retention.ArchiveClass})
	add(Input{Name: "topics_per_shard", Value: float64(f.topicsPerShard), Unit: "topics", Kind: Generated, Source: fmt.Sprintf("internal/connector: a shard's connector captures %d tables (table.include.list: the registry's and the signal table) and writes Debezium's heartbeat topic", f.topicsPerShard-1)})
	add(Input{Name: "partitions_per_topic", Value: float64(f.partitionsPerTopic), Unit: "partitions", Kind: Generated, Source: "internal/connector: topic.creation.default.partitions (commit order per shard and table)"})
	add(Input{Name: "tasks_per_connector", Value: float64(f.tasksPerConnector), Unit: "tasks", Kind: Generated, Source: "internal/connector: tasks.max, one connector per shard"})
	add(Input{Name: "hourly_tasks_per_table", Value: float64(f.hourlyPerTable), Unit: "tasks", Kind: Generated, Source: "internal/dagen: the hourly DAG's shard group, per table (extract, load, dq)"})
	add(Input{Name: "hourly_fleet_tasks", Value: float64(f.hourlyFleetTasks), Unit: "tasks", Kind: Generated, Source: fmt.Sprintf("internal/dagen: the hourly DAG's fleet-wide tasks (window_closed sensor, dbt_build, dq_cross_shard), %d of them pods", f.hourlyFleetPods)})
	add(Input{Name: "hourly_fleet_pods", Value: float64(f.hourlyFleetPods), Unit: "pods", Kind: Generated, Source: "internal/dagen: the hourly DAG's fleet-wide pods (dbt_build, dq_cross_shard)"})
	add(Input{Name: "hourly_max_active_runs", Value: float64(f.hourlyMaxRuns), Unit: "runs", Kind: Generated, Source: "internal/dagen: the hourly DAG's max_active_runs (runs at once while catching up)"})
	add(Input{Name: "cdc_every", Value: f.cdcEvery.Seconds(), Unit: "s", Kind: Generated, Source: "internal/dagen: the CDC micro-batch DAG's schedule (half of shards.yaml sla.cdc_freshness " + r.SLA.CDCFreshness.String() + ")"})
	add(Input{Name: "cdc_pods_per_run", Value: float64(f.cdcPods), Unit: "pods", Kind: Generated, Source: "internal/dagen: the CDC micro-batch DAG (tokenize_cdc, load_cdc, dbt_incremental)"})
	add(Input{Name: "daily_pods", Value: float64(f.financePods + f.retentionPods), Unit: "pods", Kind: Generated, Source: "internal/dagen: finance_daily's dbt_finance and retention_daily's purge"})
	add(Input{Name: "finance_sensors_per_shard", Value: float64(f.financePerShard), Unit: "sensors", Kind: Generated, Source: "internal/dagen: finance_daily's wait_<shard> sensors (reschedule mode: a slot only while poking)"})
}

// build computes every section's lines.
func (c *computer) build(p *Plan, fleets []*fleetAt) error {
	v := c.v
	head := v("headroom")
	peak := v("peak_writes_per_s")
	tables := v("tables")
	month := v("days_per_month") * 86400 // seconds
	tbPerMonth := v("change_data_per_month")

	archPrice, err := c.s3priceName()
	if err != nil {
		return err
	}
	type row struct {
		what, how string
		inputs    []string
		f         func(f *fleetAt, n float64) string
	}
	sections := []struct {
		title string
		rows  []row
	}{
		{"Shards (what each PostgreSQL cluster carries)", []row{
			{"writes/s per shard at peak", "peak writes ÷ shards", []string{"peak_writes_per_s"},
				func(_ *fleetAt, n float64) string { return num(peak/n) + "/s" }},
			{"reads/s per shard at peak", "peak reads ÷ shards", []string{"peak_reads_per_s"},
				func(_ *fleetAt, n float64) string { return num(v("peak_reads_per_s")/n) + "/s" }},
			{"orders per shard per year", "orders/year ÷ shards", []string{"orders_per_year"},
				func(_ *fleetAt, n float64) string { return num(v("orders_per_year")/n/1e6) + "M" }},
		}},
		{"Kafka (MSK)", []row{
			{"change topics (shard × table)", "shards × tables, one partition each (the connector's topics, internal/connector)", []string{"tables", "partitions_per_topic"},
				func(_ *fleetAt, n float64) string { return num(n * tables * v("partitions_per_topic")) }},
			{"partitions, with the signal and heartbeat topics and Kafka's own", "shards × topics per shard × partitions + Connect's internal topics + __consumer_offsets", []string{"topics_per_shard", "partitions_per_topic", "connect_internal_partitions", "consumer_offsets_partitions"},
				func(_ *fleetAt, n float64) string { return num(c.partitions(n)) }},
			{"partition replicas", "partitions × replication factor", []string{"topics_per_shard", "partitions_per_topic", "connect_internal_partitions", "consumer_offsets_partitions", "kafka_replication_factor"},
				func(_ *fleetAt, n float64) string { return num(c.partitions(n) * v("kafka_replication_factor")) }},
			{"ingress, average", "change data per month ÷ seconds per month", []string{"change_data_per_month", "days_per_month"},
				func(_ *fleetAt, _ float64) string { return dec(tbPerMonth*1e6/month) + " MB/s" }},
			{"storage, retention × replication × headroom", "change data per day × retention days × replication factor × headroom", []string{"change_data_per_month", "days_per_month", "kafka_retention_hours", "kafka_replication_factor", "headroom"},
				func(_ *fleetAt, _ float64) string { return dec(c.kafkaStorageTB()) + " TB" }},
			{"brokers (kafka.m5.large)", "max(replication factor, replicas × headroom ÷ partitions per broker, storage ÷ storage per broker, write+read MiB/s ÷ volume throughput), rounded up to a multiple of 3 AZs", []string{"kafka_replication_factor", "headroom", "msk_partitions_per_broker", "gb_per_tb", "msk_storage_per_broker", "msk_volume_throughput"},
				func(_ *fleetAt, n float64) string { return num(c.brokers(n)) }},
			{"storage per broker", "storage ÷ brokers (≤ the broker's maximum)", []string{"msk_storage_per_broker"},
				func(_ *fleetAt, n float64) string { return dec(c.kafkaStorageTB()/c.brokers(n)) + " TB" }},
		}},
		{"Kafka Connect (Debezium)", []row{
			{"connectors / tasks", "one connector per shard × tasks.max", []string{"tasks_per_connector", "debezium_tasks_per_connector"},
				func(_ *fleetAt, n float64) string { return num(n) + " / " + num(n*v("tasks_per_connector")) }},
			{"events/s per task at peak", "peak writes ÷ shards (a task reads one shard's slot)", []string{"peak_writes_per_s"},
				func(_ *fleetAt, n float64) string { return num(peak/n) + "/s" }},
			{"a task's measured rate over its peak share", "measured Debezium → Kafka events/s ÷ events/s per task", []string{"debezium_events_per_s", "peak_writes_per_s"},
				func(_ *fleetAt, n float64) string { return dec(v("debezium_events_per_s")/(peak/n)) + "x" }},
			{"workers (2 cores each)", "max(minimum workers, peak × headroom ÷ measured Debezium → Kafka events/s per 2 cores)", []string{"peak_writes_per_s", "headroom", "debezium_events_per_s", "cores_per_replica", "min_connect_workers"},
				func(_ *fleetAt, _ float64) string {
					return num(math.Max(v("min_connect_workers"), math.Ceil(peak*head/v("debezium_events_per_s"))))
				}},
		}},
		{"tokenize cdc (one consumer group)", []row{
			{"replicas (2 cores each)", "peak × headroom ÷ measured events/s per replica, at most one per change partition", []string{"peak_writes_per_s", "headroom", "cdc_events_per_s", "cores_per_replica", "tables", "partitions_per_topic"},
				func(_ *fleetAt, n float64) string {
					need := math.Ceil(peak * head / v("cdc_events_per_s"))
					parts := n * tables * v("partitions_per_topic")
					if need > parts {
						return num(parts) + " (capped: one per partition)"
					}
					return num(need)
				}},
			{"change partitions each replica reads", "change topics' partitions ÷ replicas", []string{"tables", "partitions_per_topic"},
				func(_ *fleetAt, n float64) string {
					need := math.Max(1, math.Ceil(peak*head/v("cdc_events_per_s")))
					return dec(n * tables * v("partitions_per_topic") / need)
				}},
		}},
		{"Airflow (KubernetesPodOperator)", []row{
			{"hourly DAG tasks", "shards × tables × tasks per table + fleet-wide tasks", []string{"tables", "hourly_tasks_per_table", "hourly_fleet_tasks"},
				func(_ *fleetAt, n float64) string {
					return num(n*tables*v("hourly_tasks_per_table") + v("hourly_fleet_tasks"))
				}},
			{"pods per hour", "hourly DAG pods × runs per hour + CDC micro-batch pods × runs per hour", []string{"tables", "hourly_tasks_per_table", "hourly_fleet_pods", "extract_window", "cdc_pods_per_run", "cdc_every"},
				func(_ *fleetAt, n float64) string {
					hourly := (n*tables*v("hourly_tasks_per_table") + v("hourly_fleet_pods")) * 3600 / v("extract_window")
					return num(hourly + v("cdc_pods_per_run")*3600/v("cdc_every"))
				}},
			{"pods per day, daily DAGs", "finance_daily's and retention_daily's pods (plus one wait sensor per shard)", []string{"daily_pods", "finance_sensors_per_shard"},
				func(_ *fleetAt, n float64) string {
					return num(v("daily_pods")) + " + " + num(n*v("finance_sensors_per_shard")) + " sensors"
				}},
			{"worker slots, one hourly run", "shards × tables (every table of every shard extracting at once) + 1 CDC task", []string{"tables"},
				func(_ *fleetAt, n float64) string { return num(n*tables + 1) }},
			{"worker slots, catching up", "× the hourly DAG's max_active_runs", []string{"tables", "hourly_max_active_runs"},
				func(_ *fleetAt, n float64) string { return num(n*tables*v("hourly_max_active_runs") + 1) }},
			{"extract time of a shard's window at peak", "peak writes ÷ shards × window ÷ measured extract rows/s (the slower of 1x and 10x)", []string{"peak_writes_per_s", "extract_window", "extract_rows_per_s", "extract_rows_per_s_10x"},
				func(_ *fleetAt, n float64) string {
					rate := math.Min(v("extract_rows_per_s"), v("extract_rows_per_s_10x"))
					return num(peak/n*v("extract_window")/rate) + " s"
				}},
		}},
		{"Snowflake (estimate from the DuckDB stand-in's load rate: Snowflake is not reachable here)", []row{
			{"rows loaded per day, at most", "peak writes × 86,400 s × 2 paths (batch and CDC both land every change)", []string{"peak_writes_per_s"},
				func(_ *fleetAt, _ float64) string { return num(peak*86400*2/1e9) + "B" }},
			{"files loaded per day", "shards × tables × (windows + CDC micro-batches) per day", []string{"tables", "extract_window", "cdc_every"},
				func(_ *fleetAt, n float64) string {
					return num(n * tables * (86400/v("extract_window") + 86400/v("cdc_every")))
				}},
			{"load warehouse size", "smallest size whose micro-batch load (peak × headroom × interval) takes at most half the interval, X-Small loading at the stand-in's measured rows/s and each size up twice that", []string{"peak_writes_per_s", "headroom", "cdc_every", "load_rows_per_s"},
				func(_ *fleetAt, _ float64) string { return WarehouseSizes[c.warehouseSize()].Name }},
			{"load credits per day", "(CDC runs × max(60 s, run's load time) + windows × max(60 s, window's load time)) × credits per hour of the size", []string{"peak_writes_per_s", "cdc_every", "extract_window", "load_rows_per_s", "snowflake_billing_minimum"},
				func(_ *fleetAt, _ float64) string { return dec(c.loadCredits()) }},
			{"hot raw tables", "change data per month × retention.hot months (compressed size assumed equal to Parquet's, not measured)", []string{"change_data_per_month", "retention_hot_months"},
				func(_ *fleetAt, _ float64) string { return num(tbPerMonth*v("retention_hot_months")) + " TB" }},
		}},
		{"S3 (steady state after the archive period; docs/retention.md)", []row{
			{"Standard, held", "change data per month × retention.hot in S3 days ÷ days per month", []string{"change_data_per_month", "retention_hot_days", "days_per_month"},
				func(_ *fleetAt, _ float64) string { return num(c.s3().stdTB) + " TB" }},
			{"archive class, held", "change data per month × (archive months − hot months)", []string{"change_data_per_month", "retention_archive_months", "retention_hot_days", "archive_class"},
				func(_ *fleetAt, _ float64) string { return num(c.s3().archTB) + " TB" }},
			{"Standard, per month", "tiered Standard price", []string{"gb_per_tb", "s3_standard_first_50tb", "s3_standard_next_450tb", "s3_standard_over_500tb"},
				func(_ *fleetAt, _ float64) string { return "$" + num(c.s3().stdMonth) }},
			{"archive class, per month", "archive class price", []string{"gb_per_tb", archPrice},
				func(_ *fleetAt, _ float64) string { return "$" + num(c.s3().archMonth) }},
			{"both, over the archive period from an empty bucket", "sum over its months", []string{"retention_archive_months"},
				func(_ *fleetAt, _ float64) string { return "$" + num(c.s3().total) }},
		}},
	}
	for _, s := range sections {
		sec := Section{Title: s.title}
		for _, r := range s.rows {
			l := Line{What: r.what, How: r.how, Inputs: r.inputs}
			c.use(r.inputs)
			for _, f := range fleets {
				l.Values = append(l.Values, r.f(f, float64(f.n)))
			}
			sec.Lines = append(sec.Lines, l)
		}
		p.Sections = append(p.Sections, sec)
	}
	return nil
}

func (c *computer) partitions(n float64) float64 {
	return n*c.v("topics_per_shard")*c.v("partitions_per_topic") + c.v("connect_internal_partitions") + c.v("consumer_offsets_partitions")
}

// kafkaStorageTB is the cluster's disk: a day's change data × the retention × RF ×
// headroom.
func (c *computer) kafkaStorageTB() float64 {
	perDay := c.v("change_data_per_month") / c.v("days_per_month")
	return perDay * c.v("kafka_retention_hours") / 24 * c.v("kafka_replication_factor") * c.v("headroom")
}

func (c *computer) brokers(n float64) float64 {
	rf := c.v("kafka_replication_factor")
	byPartitions := math.Ceil(c.partitions(n) * rf * c.v("headroom") / c.v("msk_partitions_per_broker"))
	byStorage := math.Ceil(c.kafkaStorageTB() * c.v("gb_per_tb") / c.v("msk_storage_per_broker"))
	// every byte is written rf times and read once by tokenize cdc
	mibps := c.v("change_data_per_month") * 1e12 / (c.v("days_per_month") * 86400) / (1 << 20)
	byThroughput := math.Ceil(mibps * (rf + 1) * c.v("headroom") / c.v("msk_volume_throughput"))
	b := math.Max(rf, math.Max(byPartitions, math.Max(byStorage, byThroughput)))
	return math.Ceil(b/3) * 3
}

// warehouseSize is the index in WarehouseSizes of the smallest size whose CDC
// micro-batch load, at peak with headroom, takes at most half the interval.
func (c *computer) warehouseSize() int {
	rows := c.v("peak_writes_per_s") * c.v("headroom") * c.v("cdc_every")
	for i := range WarehouseSizes {
		if rows/(c.v("load_rows_per_s")*math.Pow(2, float64(i))) <= c.v("cdc_every")/2 {
			return i
		}
	}
	return len(WarehouseSizes) - 1
}

func (c *computer) loadCredits() float64 {
	i := c.warehouseSize()
	rate := c.v("load_rows_per_s") * math.Pow(2, float64(i))
	peak, minimum := c.v("peak_writes_per_s"), c.v("snowflake_billing_minimum")
	busy := 0.0
	for _, every := range []float64{c.v("cdc_every"), c.v("extract_window")} {
		busy += 86400 / every * math.Max(minimum, peak*every/rate)
	}
	return busy / 3600 * WarehouseSizes[i].Credits
}

type s3plan struct {
	stdTB, archTB, stdMonth, archMonth, total float64
}

// s3priceName names the price input of the registry's archive class.
func (c *computer) s3priceName() (string, error) {
	class := c.inputs["archive_class"].Text
	switch class {
	case "GLACIER":
		return "s3_glacier", nil
	case "DEEP_ARCHIVE":
		return "s3_deep_archive", nil
	}
	return "", fmt.Errorf("capacity: no S3 price for retention.archive_class %s (internal/capacity VendorInputs has GLACIER and DEEP_ARCHIVE)", class)
}

// s3 reproduces docs/retention.md's costs: month m of the archive period holds min(m,
// hot) months in Standard and the rest in the archive class.
func (c *computer) s3() s3plan {
	name, _ := c.s3priceName()
	price := c.v(name)
	gb := c.v("gb_per_tb")
	perMonth := c.v("change_data_per_month")
	hot := c.v("retention_hot_days") / c.v("days_per_month")
	months := c.v("retention_archive_months")
	standard := func(tb float64) float64 {
		g, cost := tb*gb, 0.0
		for _, t := range []struct{ limit, price float64 }{
			{50 * gb, c.v("s3_standard_first_50tb")}, {450 * gb, c.v("s3_standard_next_450tb")}, {math.Inf(1), c.v("s3_standard_over_500tb")},
		} {
			x := math.Min(g, t.limit)
			cost += x * t.price
			if g -= x; g <= 0 {
				break
			}
		}
		return cost
	}
	var p s3plan
	for m := 1.0; m <= months; m++ {
		s := math.Min(m, hot) * perMonth
		a := (m - math.Min(m, hot)) * perMonth
		p.total += standard(s) + a*gb*price
	}
	p.stdTB = math.Min(months, hot) * perMonth
	p.archTB = (months - math.Min(months, hot)) * perMonth
	p.stdMonth = standard(p.stdTB)
	p.archMonth = p.archTB * gb * price
	return p
}

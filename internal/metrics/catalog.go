// Package metrics is shardflow's Prometheus metrics (docs/monitoring.md): the catalog of
// every metric family, the exporter `shardctl metrics serve` runs (the live state of each
// shard's sources and CDC path, read at every scrape), and the push of each task run's
// result to a Pushgateway (tasks are pods that end, so they cannot be scraped).
//
// Every family carries the label fleet (shards.yaml's fleet) and, where it applies,
// shard and table. The generated alert rules and dashboard (internal/alertrule, internal/dashboard) may use
// only the families of Catalog; a test checks it.
package metrics

// Source says who serves a family.
type Source string

// Sources.
const (
	FromExporter Source = "exporter" // shardctl metrics serve, read at each scrape
	FromPush     Source = "push"     // pushed by a task at the end of each run (Pushgateway)
)

// Family is one metric family.
type Family struct {
	Name   string
	Type   string // gauge
	Help   string
	Labels []string
	Source Source
}

// Names of the families.
const (
	ShardUp            = "shardflow_shard_up"
	ConnectorState     = "shardflow_connector_state"
	ConnectorTaskState = "shardflow_connector_task_state"
	SlotExists         = "shardflow_replication_slot_exists"
	SlotActive         = "shardflow_replication_slot_active"
	SlotLost           = "shardflow_replication_slot_lost"
	SlotRetainedBytes  = "shardflow_replication_slot_retained_wal_bytes"
	SlotFlushLagBytes  = "shardflow_replication_slot_confirmed_flush_lag_bytes"
	HeartbeatAge       = "shardflow_cdc_heartbeat_age_seconds"
	ConsumerLagRecords = "shardflow_cdc_consumer_lag_records"
	ConsumerLagSeconds = "shardflow_cdc_consumer_lag_seconds"
	CDCRead            = "shardflow_cdc_status_read"
	Quarantined        = "shardflow_cdc_quarantined"
	QuarantineRead     = "shardflow_cdc_quarantine_read"
	PausedSince        = "shardflow_shard_paused_since_timestamp_seconds"
	ExporterScrapeTime = "shardflow_exporter_scrape_duration_seconds"
	TaskExitCode       = "shardflow_task_last_exit_code"
	TaskRunTime        = "shardflow_task_last_run_timestamp_seconds"
	TaskSuccessTime    = "shardflow_task_last_success_timestamp_seconds"
	WindowDoneEnd      = "shardflow_window_done_end_timestamp_seconds"
	WindowRows         = "shardflow_window_rows"
	WindowDuration     = "shardflow_window_duration_seconds"
	CDCLoadedCommit    = "shardflow_cdc_loaded_commit_timestamp_seconds"
	DQResults          = "shardflow_dq_results"
	PCILeaks           = "shardflow_pci_leaks"
	FinanceReadyDay    = "shardflow_finance_ready_day_timestamp_seconds"
)

// Catalog is every family shardflow serves.
var Catalog = []Family{
	{ShardUp, "gauge", "1 when the shard answers a query on its extract DSN within the scrape's timeout, else 0.", []string{"fleet", "shard"}, FromExporter},
	{ConnectorState, "gauge", "1 for the state the shard's Debezium connector is in (RUNNING, PAUSED, FAILED, UNASSIGNED, RESTARTING, MISSING).", []string{"fleet", "shard", "state"}, FromExporter},
	{ConnectorTaskState, "gauge", "1 for the state each task of the shard's connector is in.", []string{"fleet", "shard", "task", "state"}, FromExporter},
	{SlotExists, "gauge", "1 when the shard's replication slot exists.", []string{"fleet", "shard"}, FromExporter},
	{SlotActive, "gauge", "1 when a process (Debezium) streams from the shard's replication slot.", []string{"fleet", "shard"}, FromExporter},
	{SlotLost, "gauge", "1 when the slot's wal_status is lost: WAL it needed was removed (re-snapshot).", []string{"fleet", "shard"}, FromExporter},
	{SlotRetainedBytes, "gauge", "WAL the shard keeps for its slot: pg_current_wal_lsn() - restart_lsn, bytes.", []string{"fleet", "shard"}, FromExporter},
	{SlotFlushLagBytes, "gauge", "WAL written since the position Debezium confirmed: pg_current_wal_lsn() - confirmed_flush_lsn, bytes.", []string{"fleet", "shard"}, FromExporter},
	{HeartbeatAge, "gauge", "Age of Debezium's heartbeat row on the shard: how long its source side has not advanced.", []string{"fleet", "shard"}, FromExporter},
	{ConsumerLagRecords, "gauge", "Records of the shard's change topics that tokenize cdc has not committed.", []string{"fleet", "shard"}, FromExporter},
	{ConsumerLagSeconds, "gauge", "Age, since its commit on the shard, of the oldest change tokenize cdc has not consumed (0: none).", []string{"fleet", "shard"}, FromExporter},
	{CDCRead, "gauge", "1 when every part of the shard's CDC state (connector, slot, heartbeat, Kafka) was read at this scrape.", []string{"fleet", "shard"}, FromExporter},
	{Quarantined, "gauge", "1 for each partition tokenize cdc stopped at a poison event (shardctl quarantine list): its table, topic, partition and offset.", []string{"fleet", "shard", "table", "topic", "partition", "offset"}, FromExporter},
	{QuarantineRead, "gauge", "1 when the quarantines and pauses in the object store were read at this scrape.", []string{"fleet"}, FromExporter},
	{PausedSince, "gauge", "When an operator paused the shard (shardctl shard pause), Unix seconds; absent when it is not paused.", []string{"fleet", "shard"}, FromExporter},
	{ExporterScrapeTime, "gauge", "How long the exporter took to read every source at this scrape.", []string{"fleet"}, FromExporter},
	{TaskExitCode, "gauge", "Exit code of the task's last run (0 ok, 75 retry later, 3 check failed, 4 schema drift, 2 usage, 1 other).", []string{"fleet", "job", "shard", "table"}, FromPush},
	{TaskRunTime, "gauge", "When the task's last run ended, Unix seconds.", []string{"fleet", "job", "shard", "table"}, FromPush},
	{TaskSuccessTime, "gauge", "When the task's last successful run ended, Unix seconds.", []string{"fleet", "job", "shard", "table"}, FromPush},
	{WindowDoneEnd, "gauge", "End of the latest batch window the task finished for the shard and table (extract-window: landed, load: loaded), Unix seconds; it never moves back (a backfill of an older window leaves it).", []string{"fleet", "job", "shard", "table"}, FromPush},
	{WindowRows, "gauge", "Rows of the task's last finished window.", []string{"fleet", "job", "shard", "table"}, FromPush},
	{WindowDuration, "gauge", "Duration of the task's last finished window, seconds.", []string{"fleet", "job", "shard", "table"}, FromPush},
	{CDCLoadedCommit, "gauge", "Latest commit time on the shard of the CDC changes in the warehouse's raw tables (load of the micro-batch), Unix seconds; time() minus it is commit → warehouse freshness while the shard has changes. It never moves back.", []string{"fleet", "job", "shard", "table"}, FromPush},
	{DQResults, "gauge", "Results of the shard's checks in the last dq run, by check and status (PASS, WARN, FAIL).", []string{"fleet", "job", "scope", "shard", "check", "status"}, FromPush},
	{PCILeaks, "gauge", "Failed PCI leak checks of the last dq run of the scope (where: warehouse or files); any is an incident.", []string{"fleet", "job", "scope", "where"}, FromPush},
	{FinanceReadyDay, "gauge", "Start (00:00 UTC) of the latest day whose finance numbers are published, Unix seconds.", []string{"fleet", "job"}, FromPush},
}

// Lookup returns the family named name.
func Lookup(name string) (Family, bool) {
	for _, f := range Catalog {
		if f.Name == name {
			return f, true
		}
	}
	return Family{}, false
}

// Package alertrule renders the Prometheus alerting rules of a fleet from shards.yaml:
// its SLAs (sla) and thresholds (monitoring), over the metric families of
// internal/metrics. The output is committed (monitoring/prometheus/) and checked for
// drift in CI; promtool checks and unit-tests it (docs/monitoring.md).
//
// Every alert carries the labels fleet and severity (critical: data is not flowing or is
// at risk, page; warning: look within the day), the shard label where the condition
// concerns one shard, and the annotations summary, description and runbook_url
// (<monitoring.runbooks>/alerts.md#<alert name in lower case>).
package alertrule

import (
	"bytes"
	"fmt"
	"strings"
	"time"

	"gopkg.in/yaml.v3"

	"github.com/shopsphere/shardflow/internal/genfile"
	"github.com/shopsphere/shardflow/internal/metrics"
	"github.com/shopsphere/shardflow/internal/registry"
)

// File is the rendered rules file, relative to the output directory.
const File = "shardflow.rules.yml"

// Rule is one alerting rule.
type Rule struct {
	Alert       string            `yaml:"alert"`
	Expr        string            `yaml:"expr"`
	For         string            `yaml:"for,omitempty"`
	Labels      map[string]string `yaml:"labels"`
	Annotations map[string]string `yaml:"annotations"`
}

// Group is a rule group.
type Group struct {
	Name     string `yaml:"name"`
	Interval string `yaml:"interval,omitempty"`
	Rules    []Rule `yaml:"rules"`
}

// Severities.
const (
	Critical = "critical"
	Warning  = "warning"
)

type spec struct {
	name, severity, expr, summary, description string
	pending                                    bool // wait monitoring.alert_after before firing
}

// onShard names the shard of an alert whose checks may be fleet-wide.
const onShard = "{{ with $labels.shard }}on shard {{ . }}{{ else }}in a fleet-wide check{{ end }}"

// Rules returns the fleet's alerting rules.
func Rules(r *registry.Registry) []Rule {
	f := fmt.Sprintf(`fleet=%q`, r.Fleet)
	sla := seconds(r.SLA.CDCFreshness.Duration)
	specs := []spec{
		{"ShardflowExporterDown", Critical,
			fmt.Sprintf(`absent(%s{%s})`, metrics.ExporterScrapeTime, f),
			"the shardflow exporter of fleet " + r.Fleet + " is not scraped",
			"No scrape of `shardctl metrics serve` reached Prometheus: every other shardflow alert of the fleet is blind.", true},
		{"ShardflowShardDown", Critical,
			fmt.Sprintf(`%s{%s} == 0`, metrics.ShardUp, f),
			"shard {{ $labels.shard }} does not answer",
			"The exporter could not run a query on shard {{ $labels.shard }} through its extract DSN. Its batch windows and CDC stop; the other shards go on.", true},
		{"ShardflowCDCConsumerBehind", Critical,
			fmt.Sprintf(`%s{%s} > %s%s`, metrics.ConsumerLagSeconds, f, sla, unlessPaused(f)),
			"CDC of shard {{ $labels.shard }} is {{ $value | humanizeDuration }} behind (sla " + Duration(r.SLA.CDCFreshness.Duration) + ")",
			"The oldest change of shard {{ $labels.shard }} that tokenize cdc has not consumed was committed {{ $value | humanizeDuration }} ago, over sla.cdc_freshness.", false},
		{"ShardflowCDCSourceStalled", Critical,
			fmt.Sprintf(`%s{%s} > %s`, metrics.HeartbeatAge, f, sla),
			"Debezium has not advanced on shard {{ $labels.shard }} for {{ $value | humanizeDuration }}",
			"The heartbeat row Debezium writes on shard {{ $labels.shard }} is older than sla.cdc_freshness: its connector does not stream.", false},
		{"ShardflowConnectorFailed", Critical,
			fmt.Sprintf(`%s{%s, state=~"FAILED|MISSING"} == 1`, metrics.ConnectorState, f),
			"the Debezium connector of shard {{ $labels.shard }} is {{ $labels.state }}",
			"Kafka Connect reports the connector of shard {{ $labels.shard }} {{ $labels.state }}: its changes stop at the slot.", true},
		{"ShardflowConnectorTaskFailed", Critical,
			fmt.Sprintf(`%s{%s, state="FAILED"} == 1`, metrics.ConnectorTaskState, f),
			"task {{ $labels.task }} of the connector of shard {{ $labels.shard }} FAILED",
			"A task of the Debezium connector of shard {{ $labels.shard }} FAILED; its trace is in `shardctl connectors status`.", true},
		{"ShardflowConnectorPaused", Warning,
			fmt.Sprintf(`%s{%s, state="PAUSED"} == 1`, metrics.ConnectorState, f),
			"the Debezium connector of shard {{ $labels.shard }} is paused",
			"The connector of shard {{ $labels.shard }} is PAUSED: its slot keeps WAL until it resumes.", true},
		{"ShardflowSlotInactive", Critical,
			fmt.Sprintf(`%s{%s} == 1 unless on (fleet, shard) %s{%s} == 1`, metrics.SlotExists, f, metrics.SlotActive, f),
			"nothing streams from the replication slot of shard {{ $labels.shard }}",
			"The slot exists but no process reads it: WAL accumulates on shard {{ $labels.shard }}.", true},
		{"ShardflowSlotLost", Critical,
			fmt.Sprintf(`%s{%s} == 1`, metrics.SlotLost, f),
			"the replication slot of shard {{ $labels.shard }} lost WAL it needed",
			"wal_status is lost: changes of shard {{ $labels.shard }} are gone from the WAL; re-snapshot (runbook).", false},
		{"ShardflowSlotRetainedWAL", Warning,
			fmt.Sprintf(`%s{%s} > %d`, metrics.SlotRetainedBytes, f, int64(r.Monitoring.SlotRetainedWAL)),
			"the slot of shard {{ $labels.shard }} retains {{ $value | humanize1024 }}B of WAL (threshold " + r.Monitoring.SlotRetainedWAL.String() + ")",
			"WAL kept for the replication slot of shard {{ $labels.shard }} is over monitoring.slot_retained_wal; unbounded, it fills the shard's disk.", true},
		{"ShardflowCDCStatusUnknown", Warning,
			fmt.Sprintf(`%s{%s} == 0 or %s{%s} == 0`, metrics.CDCRead, f, metrics.QuarantineRead, f),
			"the CDC state {{ with $labels.shard }}of shard {{ . }}{{ else }}(the quarantines in the object store){{ end }} could not be read",
			"The exporter could not read part of the CDC path (Connect, Kafka, the shard, or the object store's quarantines); its log says which. The alerts that need it are blind meanwhile.", true},
		{"ShardflowShardPausedLong", Warning,
			fmt.Sprintf(`time() - %s{%s} > %d`, metrics.PausedSince, f, int64(PausedLong/time.Second)),
			"shard {{ $labels.shard }} has been paused for {{ $value | humanizeDuration }}",
			"An operator paused shard {{ $labels.shard }} (shardctl shard paused says who and why): its windows are skipped, its CDC waits in Kafka and the finance runs of its days wait. Resume it before the change topics' retention runs out.", false},
		{"ShardflowCDCQuarantined", Critical,
			fmt.Sprintf(`%s{%s} == 1`, metrics.Quarantined, f),
			"CDC of table {{ $labels.table }} on shard {{ $labels.shard }} stopped at a poison event: {{ $labels.topic }} partition {{ $labels.partition }} offset {{ $labels.offset }}",
			"tokenize cdc cannot land the event at offset {{ $labels.offset }} of {{ $labels.topic }} partition {{ $labels.partition }}; that partition waits there (nothing after it is skipped), every other partition and shard goes on. `shardctl quarantine list` gives the reason; fix it and release the event.", false},
		{"ShardflowBatchWindowLate", Critical,
			fmt.Sprintf(`time() - %s{%s, job="load"} > %s%s`, metrics.WindowDoneEnd, f, seconds(r.Monitoring.BatchLate.Duration), unlessPaused(f)),
			"no batch window of {{ $labels.table }} on shard {{ $labels.shard }} loaded for {{ $value | humanizeDuration }}",
			"The latest window of {{ $labels.table }} loaded from shard {{ $labels.shard }} ended {{ $value | humanizeDuration }} ago, over monitoring.batch_late (" + Duration(r.Monitoring.BatchLate.Duration) + ").", true},
		{"ShardflowTaskFailed", Critical,
			fmt.Sprintf(`%s{%s} > 0 unless %s{%s} == 75`, metrics.TaskExitCode, f, metrics.TaskExitCode, f),
			"{{ $labels.job }}{{ with $labels.shard }} of shard {{ . }}{{ end }}{{ with $labels.table }} table {{ . }}{{ end }} exited {{ $value }}",
			"The last run of {{ $labels.job }} exited {{ $value }} (3 check failed, 4 schema drift, 2 usage, 1 other), which Airflow does not retry. Exit 75 (retry later) does not alert.", false},
		{"ShardflowDQFailed", Critical,
			fmt.Sprintf(`sum by (fleet, shard, check) (%s{%s, status="FAIL", check!="source_reachable"}) > 0`, metrics.DQResults, f),
			"dq check {{ $labels.check }} FAILED " + onShard,
			"The last dq run found {{ $value }} failed {{ $labels.check }} results " + onShard + "; dq.dq_results has the detail.", false},
		{"ShardflowSchemaDiffers", Warning,
			fmt.Sprintf(`sum by (fleet, shard) (%s{%s, check="schema", status="WARN"}) > 0`, metrics.DQResults, f),
			"a table on shard {{ $labels.shard }} has a column shards.yaml does not declare, or lacks one being rolled out",
			"The last dq run found {{ $value }} tables on shard {{ $labels.shard }} whose columns differ from shards.yaml without stopping the pipeline: an undeclared column (never landed until shards.yaml declares it with its pci policy) or an adding: true column the shard lacks yet (landed NULL, named in _absent_columns). dq.dq_results names the table and column.", false},
		{"ShardflowPCILeak", Critical,
			fmt.Sprintf(`sum by (fleet, where) (%s{%s}) > 0`, metrics.PCILeaks, f),
			"a PCI value was found in the {{ $labels.where }}",
			"dq's leak scan found card data in the {{ $labels.where }}: a security incident. dq.dq_results names the table and column, never the value.", false},
		// Day D is published by its finance_daily run, due D+1 finance_ready_by; at
		// finance_alert_at of D+1 the latest published day must be D, so it alerts when
		// the latest day started more than 2 days + finance_alert_at ago.
		{"ShardflowFinanceLate", Critical,
			fmt.Sprintf(`time() - max by (fleet) (%s{%s}) > %d`, metrics.FinanceReadyDay, f, 2*86400+60*r.SLA.FinanceAlertAt.Minutes()),
			"yesterday's finance numbers of fleet " + r.Fleet + " are not published at " + r.SLA.FinanceAlertAt.String() + " UTC (due " + r.SLA.FinanceReadyBy.String() + ")",
			"The latest day the finance_daily DAG published started {{ $value | humanizeDuration }} ago. Its run waits on a shard (the wait_<shard> sensor still running names it) or its dbt build failed.", false},
	}
	out := make([]Rule, 0, len(specs))
	for _, s := range specs {
		rule := Rule{
			Alert:  s.name,
			Expr:   s.expr,
			Labels: map[string]string{"severity": s.severity},
			Annotations: map[string]string{
				"summary":     s.summary,
				"description": s.description,
				"runbook_url": RunbookURL(r, s.name),
			},
		}
		if s.pending && r.Monitoring.AlertAfter.Duration > 0 {
			rule.For = Duration(r.Monitoring.AlertAfter.Duration)
		}
		out = append(out, rule)
	}
	return out
}

// PausedLong is how long a shard may stay paused before it alerts: its late-window and
// consumer-behind alerts are held meanwhile, and its changes wait in Kafka (7 days of
// retention by default).
const PausedLong = 24 * time.Hour

// unlessPaused holds an alert of a shard an operator paused (shardctl shard pause).
func unlessPaused(f string) string {
	return fmt.Sprintf(` unless on (fleet, shard) %s{%s}`, metrics.PausedSince, f)
}

// RunbookURL is the section of docs/runbooks/alerts.md on alert.
func RunbookURL(r *registry.Registry, alert string) string {
	return strings.TrimSuffix(r.Monitoring.Runbooks, "/") + "/alerts.md#" + strings.ToLower(alert)
}

// Duration writes d as Prometheus does: in the largest unit that divides it ("5m",
// "2h", "90s").
func Duration(d time.Duration) string {
	switch {
	case d%time.Hour == 0 && d != 0:
		return fmt.Sprintf("%dh", d/time.Hour)
	case d%time.Minute == 0 && d != 0:
		return fmt.Sprintf("%dm", d/time.Minute)
	case d%time.Second == 0:
		return fmt.Sprintf("%ds", d/time.Second)
	}
	return fmt.Sprintf("%dms", d/time.Millisecond)
}

func seconds(d time.Duration) string { return fmt.Sprintf("%d", int64(d/time.Second)) }

// Render returns the rules file of r under dir.
func Render(r *registry.Registry, dir string) (genfile.Set, error) {
	var b bytes.Buffer
	b.WriteString("# Generated by `shardctl gen-monitoring` from shards.yaml: do not edit.\n")
	b.WriteString("# Alerting rules of fleet " + r.Fleet + "; docs/monitoring.md, docs/runbooks/alerts.md.\n")
	enc := yaml.NewEncoder(&b)
	enc.SetIndent(2)
	if err := enc.Encode(map[string][]Group{"groups": {{Name: "shardflow-" + r.Fleet, Rules: Rules(r)}}}); err != nil {
		return genfile.Set{}, fmt.Errorf("render %s: %w", File, err)
	}
	return genfile.Set{Name: "prometheus rules", Dir: dir, Files: []genfile.File{{Path: File, Data: b.Bytes()}}}, nil
}

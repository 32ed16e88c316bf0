// Package dashboard renders the Grafana dashboard of a fleet from shards.yaml: a row of
// fleet-wide panels, then one row per shard that is not retired (up, freshness, lags,
// WAL, connector, last window loaded per table, dq), every query over the metric
// families of internal/metrics. The output is committed (monitoring/grafana/) and
// checked for drift in CI; a test checks every query names a family the exporter serves
// or a task pushes (docs/monitoring.md).
package dashboard

import (
	"encoding/json"
	"fmt"
	"regexp"

	"github.com/shopsphere/shardflow/internal/genfile"
	"github.com/shopsphere/shardflow/internal/metrics"
	"github.com/shopsphere/shardflow/internal/registry"
)

// File is the rendered dashboard, relative to the output directory.
const File = "shardflow.dashboard.json"

// Dashboard is the part of Grafana's dashboard model shardflow uses.
type Dashboard struct {
	UID           string     `json:"uid"`
	Title         string     `json:"title"`
	Tags          []string   `json:"tags"`
	Timezone      string     `json:"timezone"`
	SchemaVersion int        `json:"schemaVersion"`
	Refresh       string     `json:"refresh"`
	Time          TimeRange  `json:"time"`
	Templating    Templating `json:"templating"`
	Panels        []Panel    `json:"panels"`
}

// TimeRange is the default range.
type TimeRange struct {
	From string `json:"from"`
	To   string `json:"to"`
}

// Templating holds the dashboard's variables.
type Templating struct {
	List []Variable `json:"list"`
}

// Variable is the Prometheus data source variable.
type Variable struct {
	Name  string `json:"name"`
	Label string `json:"label"`
	Type  string `json:"type"`
	Query string `json:"query"`
}

// Panel is a row, a stat or a time series panel.
type Panel struct {
	ID          int         `json:"id"`
	Type        string      `json:"type"`
	Title       string      `json:"title"`
	Description string      `json:"description,omitempty"`
	GridPos     GridPos     `json:"gridPos"`
	Datasource  *Datasource `json:"datasource,omitempty"`
	Targets     []Target    `json:"targets,omitempty"`
	FieldConfig *FieldCfg   `json:"fieldConfig,omitempty"`
	Collapsed   *bool       `json:"collapsed,omitempty"`
	Panels      []Panel     `json:"panels,omitempty"`
}

// GridPos places a panel.
type GridPos struct {
	H int `json:"h"`
	W int `json:"w"`
	X int `json:"x"`
	Y int `json:"y"`
}

// Datasource refers to the data source variable.
type Datasource struct {
	Type string `json:"type"`
	UID  string `json:"uid"`
}

// Target is one PromQL query.
type Target struct {
	RefID        string      `json:"refId"`
	Expr         string      `json:"expr"`
	LegendFormat string      `json:"legendFormat,omitempty"`
	Datasource   *Datasource `json:"datasource"`
}

// FieldCfg sets a panel's unit and thresholds.
type FieldCfg struct {
	Defaults FieldDefaults `json:"defaults"`
}

// FieldDefaults are a panel's field defaults.
type FieldDefaults struct {
	Unit       string      `json:"unit,omitempty"`
	Thresholds *Thresholds `json:"thresholds,omitempty"`
}

// Thresholds colour a value.
type Thresholds struct {
	Mode  string `json:"mode"`
	Steps []Step `json:"steps"`
}

// Step is one threshold.
type Step struct {
	Color string   `json:"color"`
	Value *float64 `json:"value"`
}

var ds = &Datasource{Type: "prometheus", UID: "${datasource}"}

type panelSpec struct {
	title, typ, unit, description string
	exprs                         []string // each: "legend|expr"
	red                           *float64 // value from which it is red
	width                         int
}

func f64(v float64) *float64 { return &v }

// Build returns the fleet's dashboard.
func Build(r *registry.Registry) Dashboard {
	d := Dashboard{
		UID: "shardflow-" + r.Fleet, Title: "shardflow: " + r.Fleet, Tags: []string{"shardflow"},
		Timezone: "utc", SchemaVersion: 39, Refresh: "30s", Time: TimeRange{From: "now-6h", To: "now"},
		Templating: Templating{List: []Variable{{Name: "datasource", Label: "Prometheus", Type: "datasource", Query: "prometheus"}}},
	}
	fleet := fmt.Sprintf(`fleet=%q`, r.Fleet)
	sla := r.SLA.CDCFreshness.Seconds()
	id, y := 0, 0
	add := func(row string, specs []panelSpec) {
		id++
		d.Panels = append(d.Panels, Panel{ID: id, Type: "row", Title: row, GridPos: GridPos{H: 1, W: 24, X: 0, Y: y}, Collapsed: new(bool)})
		y++
		x := 0
		for _, s := range specs {
			id++
			p := Panel{ID: id, Type: s.typ, Title: s.title, Description: s.description, Datasource: ds,
				GridPos: GridPos{H: 6, W: s.width, X: x, Y: y}}
			for i, e := range s.exprs {
				legend, expr := split(e)
				p.Targets = append(p.Targets, Target{RefID: string(rune('A' + i)), Expr: expr, LegendFormat: legend, Datasource: ds})
			}
			fc := &FieldCfg{Defaults: FieldDefaults{Unit: s.unit}}
			if s.red != nil {
				fc.Defaults.Thresholds = &Thresholds{Mode: "absolute", Steps: []Step{{Color: "green", Value: nil}, {Color: "red", Value: s.red}}}
			}
			p.FieldConfig = fc
			d.Panels = append(d.Panels, p)
			x += s.width
		}
		y += 6
	}
	add("fleet "+r.Fleet, []panelSpec{
		{"shards up", "stat", "none", "Shards answering the exporter's query.", []string{fmt.Sprintf("up|sum(%s{%s})", metrics.ShardUp, fleet)}, nil, 4},
		{"PCI leaks", "stat", "none", "Failed PCI leak checks of the last dq runs; any is an incident.", []string{fmt.Sprintf("{{where}}|sum by (where) (%s{%s})", metrics.PCILeaks, fleet)}, f64(1), 4},
		{"dq FAIL (fleet-wide checks)", "stat", "none", "Failed fleet-wide dq results of the last run.", []string{fmt.Sprintf(`{{check}}|sum by (check) (%s{%s, shard="", status="FAIL"})`, metrics.DQResults, fleet)}, f64(1), 8},
		{"exporter scrape", "timeseries", "s", "How long the exporter takes to read every source.", []string{fmt.Sprintf("scrape|%s{%s}", metrics.ExporterScrapeTime, fleet)}, nil, 8},
	})
	for _, s := range r.Shards {
		if s.State == registry.StateRetired {
			continue
		}
		sh := fmt.Sprintf(`%s, shard=%q`, fleet, s.ID)
		add(fmt.Sprintf("shard %s (%s)", s.ID, s.State), []panelSpec{
			{"up", "stat", "none", "1 when the shard answers.", []string{fmt.Sprintf("up|%s{%s}", metrics.ShardUp, sh)}, nil, 2},
			{"connector", "stat", "none", "The Debezium connector's state.", []string{fmt.Sprintf("{{state}}|%s{%s} == 1", metrics.ConnectorState, sh)}, nil, 2},
			{"CDC freshness", "timeseries", "s", "Age of the oldest unconsumed change, of Debezium's heartbeat, and of the latest change loaded into the warehouse (commit → warehouse; it grows on an idle shard); red over sla.cdc_freshness.",
				[]string{fmt.Sprintf("oldest unconsumed|%s{%s}", metrics.ConsumerLagSeconds, sh), fmt.Sprintf("heartbeat|%s{%s}", metrics.HeartbeatAge, sh),
					fmt.Sprintf("commit → warehouse|time() - max(%s{%s})", metrics.CDCLoadedCommit, sh)}, f64(sla), 4},
			{"consumer lag", "timeseries", "short", "Records of the shard's topics not yet committed by tokenize cdc.", []string{fmt.Sprintf("records|%s{%s}", metrics.ConsumerLagRecords, sh)}, nil, 4},
			{"slot WAL", "timeseries", "bytes", "WAL the slot retains, and written since Debezium's confirmed position; red over monitoring.slot_retained_wal.",
				[]string{fmt.Sprintf("retained|%s{%s}", metrics.SlotRetainedBytes, sh), fmt.Sprintf("flush lag|%s{%s}", metrics.SlotFlushLagBytes, sh)}, f64(float64(r.Monitoring.SlotRetainedWAL)), 4},
			{"last window loaded", "stat", "s", "Time since the end of the latest batch window loaded, per table; red over monitoring.batch_late.",
				[]string{fmt.Sprintf(`{{table}}|time() - %s{%s, job="load"}`, metrics.WindowDoneEnd, sh)}, f64(r.Monitoring.BatchLate.Seconds()), 4},
			{"dq FAIL", "stat", "none", "Failed dq results of the shard in the last runs, by check.",
				[]string{fmt.Sprintf(`{{check}}|sum by (check) (%s{%s, status="FAIL"})`, metrics.DQResults, sh)}, f64(1), 2},
			{"quarantined", "stat", "none", "Partitions of the shard stopped at a poison event (shardctl quarantine list).",
				[]string{fmt.Sprintf(`{{table}} @ {{offset}}|%s{%s}`, metrics.Quarantined, sh)}, f64(1), 2},
		})
	}
	return d
}

func split(e string) (string, string) {
	for i := 0; i < len(e); i++ {
		if e[i] == '|' {
			return e[:i], e[i+1:]
		}
	}
	return "", e
}

var family = regexp.MustCompile(`\bshardflow_[a-z0-9_]+`)

// Families lists the metric families the dashboard's queries name.
func Families(d Dashboard) []string {
	seen := map[string]bool{}
	var out []string
	var walk func([]Panel)
	walk = func(ps []Panel) {
		for _, p := range ps {
			for _, t := range p.Targets {
				for _, m := range family.FindAllString(t.Expr, -1) {
					if !seen[m] {
						seen[m] = true
						out = append(out, m)
					}
				}
			}
			walk(p.Panels)
		}
	}
	walk(d.Panels)
	return out
}

// Render returns the dashboard file of r under dir.
func Render(r *registry.Registry, dir string) (genfile.Set, error) {
	b, err := json.MarshalIndent(Build(r), "", "  ")
	if err != nil {
		return genfile.Set{}, fmt.Errorf("render %s: %w", File, err)
	}
	return genfile.Set{Name: "grafana dashboard", Dir: dir, Files: []genfile.File{{Path: File, Data: append(b, '\n')}}}, nil
}

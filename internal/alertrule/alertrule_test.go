package alertrule_test

import (
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"gopkg.in/yaml.v3"

	"github.com/shopsphere/shardflow/internal/alertrule"
	"github.com/shopsphere/shardflow/internal/metrics"
	"github.com/shopsphere/shardflow/internal/registry"
	"github.com/shopsphere/shardflow/internal/testenv"
)

func load(t *testing.T) (*registry.Registry, string) {
	t.Helper()
	root := testenv.Root(t)
	r, err := registry.Load(filepath.Join(root, "shards.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	return r, root
}

// Every generated alert has a promtool case in which it fires (make
// test-monitoring-rules runs them), and the test file names no alert that is gone.
func TestEveryAlertHasAFiringPromtoolCase(t *testing.T) {
	r, root := load(t)
	b, err := os.ReadFile(filepath.Join(root, "monitoring", "prometheus", "shardflow.rules.test.yml"))
	if err != nil {
		t.Fatal(err)
	}
	var file struct {
		Tests []struct {
			Name   string `yaml:"name"`
			Alerts []struct {
				Name      string           `yaml:"alertname"`
				ExpAlerts []map[string]any `yaml:"exp_alerts"`
			} `yaml:"alert_rule_test"`
		} `yaml:"tests"`
	}
	if err := yaml.Unmarshal(b, &file); err != nil {
		t.Fatal(err)
	}
	fires, named := map[string]bool{}, map[string]bool{}
	for _, c := range file.Tests {
		for _, a := range c.Alerts {
			named[a.Name] = true
			if len(a.ExpAlerts) > 0 {
				fires[a.Name] = true
			}
		}
	}
	rules := map[string]bool{}
	for _, rule := range alertrule.Rules(r) {
		rules[rule.Alert] = true
		if !fires[rule.Alert] {
			t.Errorf("alert %s has no promtool case in which it fires", rule.Alert)
		}
	}
	for n := range named {
		if !rules[n] {
			t.Errorf("the promtool tests name %s, which no rule generates", n)
		}
	}
}

var family = regexp.MustCompile(`\b(shardflow_[a-z0-9_]+)`)

// Every expression reads families of the catalog, and every alert carries what an
// operator needs: a severity, the shard label when the alert is about one shard, a
// summary, a description and a runbook link whose section exists.
func TestRulesUseTheCatalogAndLinkTheirRunbook(t *testing.T) {
	r, root := load(t)
	runbook, err := os.ReadFile(filepath.Join(root, "docs", "runbooks", "alerts.md"))
	if err != nil {
		t.Fatal(err)
	}
	anchors := map[string]bool{}
	for _, line := range strings.Split(string(runbook), "\n") {
		if h, ok := strings.CutPrefix(line, "## "); ok {
			anchors[strings.ToLower(strings.TrimSpace(h))] = true
		}
	}
	for _, rule := range alertrule.Rules(r) {
		fams := family.FindAllString(rule.Expr, -1)
		if len(fams) == 0 {
			t.Errorf("%s: expression %q reads no shardflow family", rule.Alert, rule.Expr)
		}
		for _, f := range fams {
			if _, ok := metrics.Lookup(f); !ok {
				t.Errorf("%s: expression reads %s, which is not in metrics.Catalog", rule.Alert, f)
			}
		}
		if s := rule.Labels["severity"]; s != alertrule.Critical && s != alertrule.Warning {
			t.Errorf("%s: severity %q", rule.Alert, s)
		}
		for _, a := range []string{"summary", "description", "runbook_url"} {
			if rule.Annotations[a] == "" {
				t.Errorf("%s: no %s", rule.Alert, a)
			}
		}
		if !strings.Contains(rule.Expr, `fleet="`+r.Fleet+`"`) {
			t.Errorf("%s: expression %q is not scoped to fleet %s", rule.Alert, rule.Expr, r.Fleet)
		}
		anchor := strings.TrimPrefix(rule.Annotations["runbook_url"], r.Monitoring.Runbooks+"/alerts.md#")
		if !anchors[anchor] {
			t.Errorf("%s: runbook_url %s: docs/runbooks/alerts.md has no section \"## %s\"", rule.Alert, rule.Annotations["runbook_url"], rule.Alert)
		}
	}
}

// The thresholds come from shards.yaml: changing it changes the rules.
func TestRulesFollowTheRegistry(t *testing.T) {
	r, _ := load(t)
	r.SLA.CDCFreshness.Duration = 3 * time.Minute
	r.Monitoring.SlotRetainedWAL = 10 << 30
	r.Monitoring.BatchLate.Duration = 90 * time.Minute
	r.Monitoring.AlertAfter.Duration = 0
	r.SLA.FinanceAlertAt = registry.ClockTime{Hour: 4, Minute: 30}
	want := map[string]string{
		"ShardflowCDCConsumerBehind": "> 180",
		"ShardflowSlotRetainedWAL":   "> 10737418240",
		"ShardflowBatchWindowLate":   "> 5400",
		"ShardflowFinanceLate":       "> 189000",
	}
	for _, rule := range alertrule.Rules(r) {
		if w, ok := want[rule.Alert]; ok && !strings.Contains(rule.Expr, w+" ") && !strings.HasSuffix(rule.Expr, w) {
			t.Errorf("%s: expression %q, want the threshold %q", rule.Alert, rule.Expr, w)
		}
		if rule.For != "" {
			t.Errorf("%s: for %s with alert_after 0", rule.Alert, rule.For)
		}
	}
}

func TestDuration(t *testing.T) {
	for d, want := range map[time.Duration]string{5 * time.Minute: "5m", 2 * time.Hour: "2h", 90 * time.Second: "90s", 1500 * time.Millisecond: "1500ms", 0: "0s"} {
		if got := alertrule.Duration(d); got != want {
			t.Errorf("Duration(%s) = %s, want %s", d, got, want)
		}
	}
}

// Package promtest starts a real Prometheus, Alertmanager and Pushgateway for a test
// (test/harness/monitoring/stack.sh, the same script `make monitoring` runs, on free
// ports and a temporary directory) and reads their APIs: the alerts Prometheus
// evaluates and the alerts Alertmanager received.
package promtest

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/shopsphere/shardflow/internal/testenv"
)

// Config is what the stack monitors.
type Config struct {
	Exporter string // host:port Prometheus scrapes /metrics from
	Rules    []byte // the alert rules file
	// AlertmanagerConfig is the Alertmanager configuration file (default the one the
	// repository ships, monitoring/alertmanager/alertmanager.yml).
	AlertmanagerConfig string
	// Interval is the scrape and rule evaluation interval (default 2s); alerts are
	// re-sent to Alertmanager at the same pace.
	Interval time.Duration
}

// Stack is a running Prometheus, Alertmanager and Pushgateway.
type Stack struct {
	Dir                                            string
	PrometheusURL, AlertmanagerURL, PushgatewayURL string
	script                                         string
	env                                            []string
}

// Require skips (or, under CI, fails) the test when the Debian packages are missing.
func Require(t testing.TB) string {
	t.Helper()
	root := testenv.Root(t)
	for _, b := range []string{"prometheus", "prometheus-alertmanager", "prometheus-pushgateway"} {
		if _, err := exec.LookPath(b); err != nil {
			testenv.Missing(t, fmt.Sprintf("promtest: %s is not installed: run `make deps-apt`", b))
		}
	}
	return root
}

// Start brings up a stack for cfg and registers its teardown.
func Start(t testing.TB, cfg Config) *Stack {
	t.Helper()
	root := Require(t)
	if cfg.Interval <= 0 {
		cfg.Interval = 2 * time.Second
	}
	amConfig := cfg.AlertmanagerConfig
	if amConfig == "" {
		amConfig = filepath.Join(root, "monitoring", "alertmanager", "alertmanager.yml")
	}
	dir := t.TempDir()
	rules := filepath.Join(dir, "rules.yml")
	if err := os.WriteFile(rules, cfg.Rules, 0o644); err != nil {
		t.Fatal(err)
	}
	ports, err := testenv.FreePorts(3)
	if err != nil {
		t.Fatal(err)
	}
	iv := fmt.Sprintf("%dms", cfg.Interval.Milliseconds())
	s := &Stack{
		Dir:             dir,
		PrometheusURL:   fmt.Sprintf("http://127.0.0.1:%d", ports[0]),
		AlertmanagerURL: fmt.Sprintf("http://127.0.0.1:%d", ports[1]),
		PushgatewayURL:  fmt.Sprintf("http://127.0.0.1:%d", ports[2]),
		script:          filepath.Join(root, "test", "harness", "monitoring", "stack.sh"),
		env: append(os.Environ(),
			"MON_DIR="+filepath.Join(dir, "stack"),
			fmt.Sprintf("PROMETHEUS_PORT=%d", ports[0]),
			fmt.Sprintf("ALERTMANAGER_PORT=%d", ports[1]),
			fmt.Sprintf("PUSHGATEWAY_PORT=%d", ports[2]),
			"EXPORTER_TARGET="+cfg.Exporter,
			"EXPORTER_START=0",
			"RULES="+rules,
			"ALERTMANAGER_CONFIG="+amConfig,
			"SCRAPE_INTERVAL="+iv,
			"RESEND_DELAY="+iv,
		),
	}
	t.Cleanup(func() {
		if t.Failed() {
			s.dumpLogs(t)
		}
		if err := s.run("down"); err != nil {
			t.Errorf("promtest: %v", err)
		}
	})
	if err := s.run("up"); err != nil {
		t.Fatalf("promtest: %v", err)
	}
	return s
}

func (s *Stack) run(arg string) error {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, "bash", s.script, arg)
	cmd.Env = s.env
	out, err := cmd.CombinedOutput()
	if err != nil {
		return fmt.Errorf("stack.sh %s: %w: %s", arg, err, strings.TrimSpace(string(out)))
	}
	return nil
}

func (s *Stack) dumpLogs(t testing.TB) {
	for _, n := range []string{"prometheus", "alertmanager", "pushgateway"} {
		b, err := os.ReadFile(filepath.Join(s.Dir, "stack", n, n+".log"))
		if err != nil {
			continue
		}
		lines := strings.Split(strings.TrimSpace(string(b)), "\n")
		if len(lines) > 15 {
			lines = lines[len(lines)-15:]
		}
		t.Logf("promtest: %s log (tail):\n%s", n, strings.Join(lines, "\n"))
	}
}

// Alert is an alert as Prometheus (state pending or firing) or Alertmanager (state
// active, suppressed or unprocessed; InhibitedBy the fingerprints of the alerts that
// inhibit it) reports it.
type Alert struct {
	Labels      map[string]string
	Annotations map[string]string
	State       string
	InhibitedBy []string
	EndsAt      time.Time
}

// Name is the alert's alertname.
func (a Alert) Name() string { return a.Labels["alertname"] }

// Rules returns the alerts Prometheus evaluates now, pending and firing.
func (s *Stack) Rules(ctx context.Context) ([]Alert, error) {
	var body struct {
		Data struct {
			Alerts []struct {
				Labels      map[string]string `json:"labels"`
				Annotations map[string]string `json:"annotations"`
				State       string            `json:"state"`
			} `json:"alerts"`
		} `json:"data"`
	}
	if err := getJSON(ctx, s.PrometheusURL+"/api/v1/alerts", &body); err != nil {
		return nil, err
	}
	var out []Alert
	for _, a := range body.Data.Alerts {
		out = append(out, Alert{Labels: a.Labels, Annotations: a.Annotations, State: a.State})
	}
	return out, nil
}

// Received returns the alerts Alertmanager holds that have not ended, inhibited ones
// included.
func (s *Stack) Received(ctx context.Context) ([]Alert, error) {
	var body []struct {
		Labels      map[string]string `json:"labels"`
		Annotations map[string]string `json:"annotations"`
		EndsAt      time.Time         `json:"endsAt"`
		Status      struct {
			State       string   `json:"state"`
			InhibitedBy []string `json:"inhibitedBy"`
		} `json:"status"`
	}
	q := url.Values{"active": {"true"}, "silenced": {"true"}, "inhibited": {"true"}, "unprocessed": {"true"}}
	if err := getJSON(ctx, s.AlertmanagerURL+"/api/v2/alerts?"+q.Encode(), &body); err != nil {
		return nil, err
	}
	now := time.Now()
	var out []Alert
	for _, a := range body {
		if !a.EndsAt.IsZero() && !a.EndsAt.After(now) {
			continue // resolved
		}
		out = append(out, Alert{Labels: a.Labels, Annotations: a.Annotations, State: a.Status.State, InhibitedBy: a.Status.InhibitedBy, EndsAt: a.EndsAt})
	}
	return out, nil
}

// Query runs an instant PromQL query and returns each sample's labels and value.
func (s *Stack) Query(ctx context.Context, q string) ([]Sample, error) {
	var body struct {
		Status string `json:"status"`
		Error  string `json:"error"`
		Data   struct {
			Result []struct {
				Metric map[string]string `json:"metric"`
				Value  [2]any            `json:"value"`
			} `json:"result"`
		} `json:"data"`
	}
	if err := getJSON(ctx, s.PrometheusURL+"/api/v1/query?"+url.Values{"query": {q}}.Encode(), &body); err != nil {
		return nil, err
	}
	if body.Status != "success" {
		return nil, fmt.Errorf("query %s: %s", q, body.Error)
	}
	var out []Sample
	for _, r := range body.Data.Result {
		v, _ := r.Value[1].(string)
		out = append(out, Sample{Labels: r.Metric, Value: v})
	}
	return out, nil
}

// Sample is one result of Query.
type Sample struct {
	Labels map[string]string
	Value  string
}

func getJSON(ctx context.Context, u string, v any) error {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, u, nil)
	if err != nil {
		return err
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("GET %s: %s", u, resp.Status)
	}
	return json.NewDecoder(resp.Body).Decode(v)
}

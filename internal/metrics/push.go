package metrics

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"maps"
	"net/http"
	"strconv"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/push"

	"github.com/shopsphere/shardflow/internal/exitcode"
)

// PushgatewayEnv names the variable that overrides
// environments.<env>.monitoring.pushgateway_url for a task.
const PushgatewayEnv = "SHARDFLOW_PUSHGATEWAY_URL"

// Run is the result of one task run, pushed under the grouping key
// {job: Job, fleet, shard, table, scope} (shard, table and scope left out when empty):
// a later run of the same task, shard, table and scope replaces it.
type Run struct {
	Fleet, Job, Shard, Table string
	Err                      error     // the run's error; its exit code is pushed
	End                      time.Time // when the run ended (default now)
	// WindowEnd is the end of the batch window the run finished (zero: none). The
	// pushed shardflow_window_done_end_timestamp_seconds is the later of it and the
	// value already in the group, so a backfill of an old window does not move it back.
	WindowEnd time.Time
	Rows      int64
	Duration  time.Duration
	// CommitLast is the latest commit time of the shard's CDC changes in the warehouse
	// after the run (zero: none); pushed, like WindowEnd, only forward.
	CommitLast time.Time
	// Scope, when set, is one more grouping label: what a run of the job covers (dq:
	// its --shard list, or "fleet"), so runs of other scopes keep their groups.
	Scope string
	// Extra are more samples of pushed families of Catalog (dq results, PCI leaks,
	// finance), pushed whatever the exit code (a dq run that found a FAIL exits 3).
	Extra []Sample
}

// Sample is one value of a family.
type Sample struct {
	Family string
	Labels map[string]string // its labels other than fleet, job and the grouping key's
	Value  float64
}

// Push sends r to the Pushgateway at gateway. A failed run pushes only its exit code
// and run time: the last success and window stay as they were.
func Push(ctx context.Context, gateway string, r Run) error {
	if r.End.IsZero() {
		r.End = time.Now()
	}
	group := map[string]string{"fleet": r.Fleet, "job": r.Job}
	if r.Shard != "" {
		group["shard"] = r.Shard
	}
	if r.Table != "" {
		group["table"] = r.Table
	}
	if r.Scope != "" {
		group["scope"] = r.Scope
	}
	reg := prometheus.NewRegistry()
	gauges := map[string]*prometheus.GaugeVec{}
	// set sets a family's sample; labels are the values of its labels that are not in
	// the grouping key (the Pushgateway adds those to every sample of the group).
	set := func(name string, v float64, labels map[string]string) error {
		f, ok := Lookup(name)
		if !ok || f.Source != FromPush {
			return fmt.Errorf("push: %s is not a pushed family of the catalog", name)
		}
		var names, values []string
		for _, l := range f.Labels {
			if _, inKey := group[l]; !inKey {
				names = append(names, l)
				values = append(values, labels[l])
			}
		}
		g := gauges[name]
		if g == nil {
			g = prometheus.NewGaugeVec(prometheus.GaugeOpts{Name: name, Help: f.Help}, names)
			gauges[name] = g
			reg.MustRegister(g)
		}
		m, err := g.GetMetricWithLabelValues(values...)
		if err != nil {
			return fmt.Errorf("push %s: %w", name, err)
		}
		m.Set(v)
		return nil
	}
	var errs []error
	add := func(err error) {
		if err != nil {
			errs = append(errs, err)
		}
	}
	add(set(TaskExitCode, float64(exitcode.Of(r.Err)), nil))
	add(set(TaskRunTime, unix(r.End), nil))
	// forward is t, or the value already in the group when that is later
	forward := func(family string, t time.Time) float64 {
		v := unix(t)
		if prev, ok := current(ctx, gateway, group, family); ok && prev > v {
			return prev
		}
		return v
	}
	if r.Err == nil {
		add(set(TaskSuccessTime, unix(r.End), nil))
		if !r.WindowEnd.IsZero() {
			add(set(WindowDoneEnd, forward(WindowDoneEnd, r.WindowEnd), nil))
			add(set(WindowRows, float64(r.Rows), nil))
			add(set(WindowDuration, r.Duration.Seconds(), nil))
		}
		if !r.CommitLast.IsZero() {
			add(set(CDCLoadedCommit, forward(CDCLoadedCommit, r.CommitLast), nil))
		}
	}
	for _, s := range r.Extra {
		add(set(s.Family, s.Value, s.Labels))
	}
	if len(errs) > 0 {
		return errs[0]
	}
	p := push.New(gateway, r.Job).Gatherer(reg)
	for _, k := range []string{"fleet", "shard", "table", "scope"} {
		if v, ok := group[k]; ok {
			p = p.Grouping(k, v)
		}
	}
	// Add (POST) replaces the group's families pushed now and keeps the others, so a
	// failed run keeps the group's last success.
	return p.AddContext(ctx)
}

// current reads family's value in the group from the Pushgateway's API, if any.
func current(ctx context.Context, gateway string, group map[string]string, family string) (float64, bool) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, gateway+"/api/v1/metrics", nil)
	if err != nil {
		return 0, false
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return 0, false
	}
	defer resp.Body.Close()
	var body struct {
		Data []map[string]json.RawMessage `json:"data"`
	}
	if resp.StatusCode != http.StatusOK || json.NewDecoder(resp.Body).Decode(&body) != nil {
		return 0, false
	}
	for _, g := range body.Data {
		var labels map[string]string
		if json.Unmarshal(g["labels"], &labels) != nil || !maps.Equal(labels, group) {
			continue
		}
		var fam struct {
			Metrics []struct {
				Value string `json:"value"`
			} `json:"metrics"`
		}
		if raw, ok := g[family]; ok && json.Unmarshal(raw, &fam) == nil && len(fam.Metrics) > 0 {
			v, err := strconv.ParseFloat(fam.Metrics[0].Value, 64)
			return v, err == nil
		}
	}
	return 0, false
}

func unix(t time.Time) float64 { return float64(t.UnixNano()) / 1e9 }

// Gateway is the Pushgateway a task pushes to: $SHARDFLOW_PUSHGATEWAY_URL, else the
// environment's monitoring.pushgateway_url; "" pushes nothing.
func Gateway(env map[string]string, configured string) string {
	if v, ok := env[PushgatewayEnv]; ok {
		return v
	}
	return configured
}

// Report pushes r to Gateway(env, configured) when there is one and r names its job
// (a dry run or a usage error leaves Job empty). A push that fails is written to log
// and never fails the task: the run's work is done, only its metric is late.
func Report(ctx context.Context, env map[string]string, configured string, r Run, log io.Writer) {
	gw := Gateway(env, configured)
	if gw == "" || r.Job == "" {
		return
	}
	pctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 10*time.Second)
	defer cancel()
	if err := Push(pctx, gw, r); err != nil {
		fmt.Fprintf(log, "%s: metrics not pushed to %s: %v\n", r.Job, gw, err)
	}
}

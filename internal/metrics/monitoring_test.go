package metrics_test

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/shopsphere/shardflow/internal/alertrule"
	"github.com/shopsphere/shardflow/internal/cdc"
	"github.com/shopsphere/shardflow/internal/cdc/cdctest"
	"github.com/shopsphere/shardflow/internal/cdc/health"
	"github.com/shopsphere/shardflow/internal/connector"
	"github.com/shopsphere/shardflow/internal/dashboard"
	"github.com/shopsphere/shardflow/internal/exitcode"
	"github.com/shopsphere/shardflow/internal/fleet/fleettest"
	"github.com/shopsphere/shardflow/internal/metrics"
	"github.com/shopsphere/shardflow/internal/metrics/promtest"
	"github.com/shopsphere/shardflow/internal/objstore/dir"
	"github.com/shopsphere/shardflow/internal/registry"
)

// TestAlertsFireAndResolveOnRealStack runs the generated rules in a real Prometheus that
// scrapes the exporter (over two real shards, Kafka and a Connect worker with Debezium)
// and a real Pushgateway the test pushes task results to, with the Alertmanager
// configuration the repository ships. With shard s01 stopped, s00's connector paused, a
// load of s00 last finished 3h ago and a dq run that failed a check on s01, the expected
// alerts fire with the right shard labels and nothing else of theirs, reach
// Alertmanager, and the alerts a stopped shard explains are inhibited there; a quarantined
// partition (a poison event) fires its alert naming the offset; after
// recovery every one of them resolves in Prometheus and in Alertmanager.
func TestAlertsFireAndResolveOnRealStack(t *testing.T) {
	root := cdctest.Require(t)
	promtest.Require(t)
	base, err := os.ReadFile(filepath.Join(root, "shards.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	text, err := registry.Generate(base, 2, 0)
	if err != nil {
		t.Fatal(err)
	}
	reg := fleettest.Registry(t, string(text))
	fl := fleettest.Start(t, reg)
	stack := cdctest.Start(t)
	ctx, cancel := context.WithTimeout(context.Background(), 8*time.Minute)
	defer cancel()

	// Connectors for both shards, streaming.
	extract, replication := map[string]string{}, map[string]string{}
	for _, s := range fl.Shards {
		extract[s.ID], replication[s.ID] = s.ExtractDSN, s.ReplicationDSN
	}
	stack.WriteSecrets(t, reg.Tokenizer, replication, "monitoring-test-tokenizer-key-0123456789abcdef")
	client := connector.NewClient(stack.ConnectURL, nil)
	desired, err := connector.RenderAll(reg, "shardflow")
	if err != nil {
		t.Fatal(err)
	}
	plan, err := connector.Plan(ctx, client, desired)
	if err != nil {
		t.Fatal(err)
	}
	if err := connector.Apply(ctx, client, plan); err != nil {
		t.Fatal(err)
	}

	// The exporter, as `shardctl metrics serve` runs it.
	lake := dir.Store{Root: t.TempDir()}
	ex := &metrics.Exporter{Registry: reg, ExtractDSNs: extract, Timeout: 1500 * time.Millisecond, Store: lake,
		Log: slog.New(slog.NewTextHandler(os.Stderr, nil)),
		CDC: &health.Checker{Registry: reg, Connect: connector.NewProbe(stack.ConnectURL), Brokers: stack.Brokers, TopicPrefix: "shardflow", Group: "monitoring-test", DSNs: replication}}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	srv := &http.Server{Handler: metrics.Handler(ex, ex.Log), ReadHeaderTimeout: 5 * time.Second}
	go func() {
		if err := srv.Serve(ln); err != nil && !errors.Is(err, http.ErrServerClosed) {
			t.Errorf("exporter: %v", err)
		}
	}()
	t.Cleanup(func() { srv.Close() })

	// The rules of this registry, holding a condition 3s before alerting.
	reg.Monitoring.AlertAfter.Duration = 3 * time.Second
	rules, err := alertrule.Render(reg, "")
	if err != nil {
		t.Fatal(err)
	}
	amConfig := filepath.Join(root, "monitoring", "alertmanager", "alertmanager.yml")
	mon := promtest.Start(t, promtest.Config{Exporter: ln.Addr().String(), Rules: rules.Files[0].Data, AlertmanagerConfig: amConfig})

	// Healthy: both shards up and their connectors RUNNING as Prometheus sees them.
	waitFor(t, ctx, "both shards up and both connectors RUNNING in Prometheus", func() (bool, string) {
		up, err := mon.Query(ctx, metrics.ShardUp+" == 1")
		if err != nil {
			return false, err.Error()
		}
		running, err := mon.Query(ctx, metrics.ConnectorState+`{state="RUNNING"} == 1`)
		if err != nil {
			return false, err.Error()
		}
		return len(up) == 2 && len(running) == 2, fmt.Sprintf("up %v, running %v", shards(up), shards(running))
	})

	// Break: s01 stopped, s00's connector paused; a load of s00 that last finished a
	// window 3h ago (batch_late 2h), a dq run that failed a check on s01, and orders of
	// s01 quarantined at a poison event.
	poisoned := cdc.Quarantine{Topic: "shardflow.s01.public.orders", Partition: 0, Offset: 41, Shard: "s01", Table: "orders",
		Reason: "change event columns differ from shards.yaml: column note is not in shards.yaml", ExitCode: exitcode.Drift, At: time.Now()}
	if err := cdc.WriteQuarantine(ctx, lake, poisoned); err != nil {
		t.Fatal(err)
	}
	if err := fl.StopShard(ctx, "s01"); err != nil {
		t.Fatal(err)
	}
	if err := client.Pause(ctx, connector.Name("s00")); err != nil {
		t.Fatal(err)
	}
	push(t, ctx, mon, metrics.Run{Fleet: reg.Fleet, Job: "load", Shard: "s00", Table: "orders",
		WindowEnd: time.Now().Add(-3 * time.Hour), Rows: 10, Duration: time.Second})
	push(t, ctx, mon, metrics.Run{Fleet: reg.Fleet, Job: "load-cdc", Shard: "s00", CommitLast: time.Now().Add(-time.Minute)})
	push(t, ctx, mon, metrics.Run{Fleet: reg.Fleet, Job: "dq", Scope: "fleet", Err: exitcode.Errorf(exitcode.CheckFail, "dq failed"),
		Extra: []metrics.Sample{
			{Family: metrics.DQResults, Labels: map[string]string{"shard": "s01", "check": "row_count", "status": "FAIL"}, Value: 1},
			{Family: metrics.DQResults, Labels: map[string]string{"shard": "s00", "check": "row_count", "status": "PASS"}, Value: 1},
			{Family: metrics.PCILeaks, Labels: map[string]string{"where": "warehouse"}, Value: 0},
		}})

	want := []string{
		"ShardflowShardDown{shard=s01}",
		"ShardflowConnectorPaused{shard=s00}",
		"ShardflowBatchWindowLate{shard=s00,table=orders}",
		"ShardflowDQFailed{shard=s01}",
		"ShardflowTaskFailed{job=dq}",
		"ShardflowCDCQuarantined{shard=s01,table=orders}",
	}
	var received []promtest.Alert
	waitFor(t, ctx, "the expected alerts firing in Prometheus and received by Alertmanager", func() (bool, string) {
		firing, err := mon.Rules(ctx)
		if err != nil {
			return false, err.Error()
		}
		received, err = mon.Received(ctx)
		if err != nil {
			return false, err.Error()
		}
		f, r := keys(firing, "firing"), keys(received, "")
		// the stopped shard's unread CDC state is received too (and inhibited, below)
		return contains(f, want) && contains(r, append(want, "ShardflowCDCStatusUnknown{shard=s01}")), fmt.Sprintf("firing %v; received %v", f, r)
	})
	for _, a := range received {
		if a.Labels["fleet"] != reg.Fleet || a.Labels["severity"] == "" || !strings.HasPrefix(a.Annotations["runbook_url"], "https://") {
			t.Errorf("alert %v %v: want fleet %s, a severity and a runbook_url", a.Labels, a.Annotations, reg.Fleet)
		}
		switch a.Name() {
		case "ShardflowShardDown":
			if a.Labels["shard"] != "s01" {
				t.Errorf("shard %s reported down; only s01 is", a.Labels["shard"])
			}
		case "ShardflowConnectorPaused":
			if a.Labels["shard"] != "s00" {
				t.Errorf("the connector of %s reported paused; only s00's is", a.Labels["shard"])
			}
		}
	}
	// What the stopped shard explains is held back: Alertmanager inhibits it.
	received, err = mon.Received(ctx)
	if err != nil {
		t.Fatal(err)
	}
	inhibited := 0
	for _, a := range received {
		switch a.Name() {
		case "ShardflowCDCStatusUnknown", "ShardflowConnectorFailed", "ShardflowConnectorTaskFailed", "ShardflowCDCSourceStalled", "ShardflowSlotInactive":
			if a.Labels["shard"] != "s01" {
				continue
			}
			if a.State != "suppressed" || len(a.InhibitedBy) == 0 {
				t.Errorf("%s on the stopped shard s01 is %s, want it inhibited by ShardflowShardDown", a.Name(), a.State)
			}
			inhibited++
		}
	}
	if inhibited == 0 {
		t.Errorf("no alert of the stopped shard s01 was held back by ShardflowShardDown: %v", keys(received, ""))
	}
	t.Logf("received while broken: %v", keys(received, ""))

	// Every family the dashboard's panels query has series in Prometheus (the
	// quarantine's only while there is one).
	fams := dashboard.Families(dashboard.Build(reg))
	waitFor(t, ctx, "a series in Prometheus for every family the dashboard queries", func() (bool, string) {
		var missing []string
		for _, f := range fams {
			got, err := mon.Query(ctx, fmt.Sprintf("count(%s{fleet=%q})", f, reg.Fleet))
			if err != nil {
				return false, err.Error()
			}
			if len(got) == 0 {
				missing = append(missing, f)
			}
		}
		return len(missing) == 0, fmt.Sprintf("no series of %v", missing)
	})

	// Recover: s01 started, s00 resumed, the load and dq run again and pass, the
	// quarantine released.
	if err := fl.StartShard(ctx, "s01"); err != nil {
		t.Fatal(err)
	}
	if err := client.Resume(ctx, connector.Name("s00")); err != nil {
		t.Fatal(err)
	}
	if _, err := cdc.Release(ctx, lake, poisoned.Topic, 0, 41, cdc.Decision{Action: cdc.Retry, Reason: "note declared", By: "test"}); err != nil {
		t.Fatal(err)
	}
	push(t, ctx, mon, metrics.Run{Fleet: reg.Fleet, Job: "load", Shard: "s00", Table: "orders",
		WindowEnd: time.Now().Truncate(time.Hour), Rows: 12, Duration: time.Second})
	push(t, ctx, mon, metrics.Run{Fleet: reg.Fleet, Job: "dq", Scope: "fleet",
		Extra: []metrics.Sample{
			{Family: metrics.DQResults, Labels: map[string]string{"shard": "s01", "check": "row_count", "status": "PASS"}, Value: 1},
			{Family: metrics.DQResults, Labels: map[string]string{"shard": "s00", "check": "row_count", "status": "PASS"}, Value: 1},
			{Family: metrics.PCILeaks, Labels: map[string]string{"where": "warehouse"}, Value: 0},
		}})
	waitFor(t, ctx, "every one of them resolved in Prometheus and Alertmanager", func() (bool, string) {
		firing, err := mon.Rules(ctx)
		if err != nil {
			return false, err.Error()
		}
		received, err := mon.Received(ctx)
		if err != nil {
			return false, err.Error()
		}
		f, r := keys(firing, ""), keys(received, "")
		return !overlaps(f, want) && !overlaps(r, want), fmt.Sprintf("still firing %v; still in alertmanager %v", f, r)
	})
}

// TestPushOnRealPushgateway: the pushed window end never moves back (a backfill of an
// older window leaves it), a failed run keeps the last success and window, and the
// task's labels survive the Pushgateway into Prometheus (honor_labels).
func TestPushOnRealPushgateway(t *testing.T) {
	promtest.Require(t)
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	mon := promtest.Start(t, promtest.Config{Exporter: "127.0.0.1:1", Rules: []byte("groups: []\n")})
	end := time.Date(2026, 12, 1, 10, 0, 0, 0, time.UTC)
	run := metrics.Run{Fleet: "f", Job: "load", Shard: "s03", Table: "orders", WindowEnd: end, Rows: 5, Duration: time.Second, End: end.Add(5 * time.Minute)}
	push(t, ctx, mon, run)
	backfill := run
	backfill.WindowEnd, backfill.Rows, backfill.End = end.Add(-48*time.Hour), 7, end.Add(10*time.Minute)
	push(t, ctx, mon, backfill)
	failed := run
	failed.Err, failed.End = exitcode.Errorf(exitcode.Drift, "drift"), end.Add(15*time.Minute)
	push(t, ctx, mon, failed)
	// the micro-batch's load: the latest loaded commit only moves forward
	cdcLoad := metrics.Run{Fleet: "f", Job: "load-cdc", Shard: "s03", CommitLast: end}
	push(t, ctx, mon, cdcLoad)
	cdcLoad.CommitLast = end.Add(-time.Hour)
	push(t, ctx, mon, cdcLoad)
	want := map[string]float64{
		metrics.WindowDoneEnd:   float64(end.Unix()),
		metrics.WindowRows:      7,
		metrics.TaskExitCode:    4,
		metrics.TaskSuccessTime: float64(end.Add(10 * time.Minute).Unix()),
		metrics.TaskRunTime:     float64(end.Add(15 * time.Minute).Unix()),
	}
	waitFor(t, ctx, "the pushed values in Prometheus", func() (bool, string) {
		var wrong []string
		for f, v := range want {
			got, err := mon.Query(ctx, fmt.Sprintf(`%s{fleet="f", job="load", shard="s03", table="orders"}`, f))
			if err != nil {
				return false, err.Error()
			}
			if len(got) != 1 || got[0].Value != strconv.FormatFloat(v, 'f', -1, 64) {
				wrong = append(wrong, fmt.Sprintf("%s %v (want %v)", f, got, v))
			}
		}
		got, err := mon.Query(ctx, fmt.Sprintf(`%s{fleet="f", job="load-cdc", shard="s03"}`, metrics.CDCLoadedCommit))
		if err != nil {
			return false, err.Error()
		}
		if len(got) != 1 || got[0].Value != strconv.FormatInt(end.Unix(), 10) {
			wrong = append(wrong, fmt.Sprintf("%s %v (want %d)", metrics.CDCLoadedCommit, got, end.Unix()))
		}
		return len(wrong) == 0, strings.Join(wrong, "; ")
	})
}

func push(t *testing.T, ctx context.Context, mon *promtest.Stack, r metrics.Run) {
	t.Helper()
	if err := metrics.Push(ctx, mon.PushgatewayURL, r); err != nil {
		t.Fatal(err)
	}
}

func waitFor(t *testing.T, ctx context.Context, what string, ok func() (bool, string)) {
	t.Helper()
	deadline := time.Now().Add(3 * time.Minute)
	for {
		done, state := ok()
		if done {
			return
		}
		if time.Now().After(deadline) || ctx.Err() != nil {
			t.Fatalf("never %s: %s", what, state)
		}
		time.Sleep(time.Second)
	}
}

// keys names each alert by its name and the labels that place it (shard, table, job),
// keeping only those in state (any when empty).
func keys(alerts []promtest.Alert, state string) []string {
	var out []string
	for _, a := range alerts {
		if state != "" && a.State != state {
			continue
		}
		var ls []string
		for _, l := range []string{"job", "shard", "table"} {
			if v := a.Labels[l]; v != "" && (l != "job" || a.Name() == "ShardflowTaskFailed") {
				ls = append(ls, l+"="+v)
			}
		}
		k := a.Name()
		if len(ls) > 0 {
			k += "{" + strings.Join(ls, ",") + "}"
		}
		out = append(out, k)
	}
	sort.Strings(out)
	return out
}

func contains(have, want []string) bool {
	set := map[string]bool{}
	for _, h := range have {
		set[h] = true
	}
	for _, w := range want {
		if !set[w] {
			return false
		}
	}
	return true
}

func overlaps(have, want []string) bool {
	for _, w := range want {
		if contains(have, []string{w}) {
			return true
		}
	}
	return false
}

func shards(samples []promtest.Sample) []string {
	var out []string
	for _, s := range samples {
		out = append(out, s.Labels["shard"])
	}
	sort.Strings(out)
	return out
}

package metrics

import (
	"context"
	"log/slog"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/shopsphere/shardflow/internal/cdc"
	"github.com/shopsphere/shardflow/internal/cdc/health"
	"github.com/shopsphere/shardflow/internal/objstore"
	"github.com/shopsphere/shardflow/internal/pause"
	"github.com/shopsphere/shardflow/internal/registry"
)

// ConnectorStates are the states shardflow_connector_state reports: Kafka Connect's,
// and MISSING for a managed shard without a connector. Every state is reported (0 or
// 1), so an alert on a state sees it go away.
var ConnectorStates = []string{"RUNNING", "PAUSED", "FAILED", "UNASSIGNED", "RESTARTING", "STOPPED", "MISSING"}

// Exporter is a prometheus.Collector reading, at each scrape, every shard of the
// registry (a query on its extract DSN) and the CDC path's state through health.Checker.
// A part that cannot be read is reported by its own gauge (shardflow_shard_up 0,
// shardflow_cdc_status_read 0) and its other gauges are left out, never reported as
// healthy values.
type Exporter struct {
	Registry *registry.Registry
	// ExtractDSNs maps a shard to its extract DSN; a shard without one is reported down.
	ExtractDSNs map[string]string
	// CDC reads the CDC path; nil when the environment has none (batch only).
	CDC *health.Checker
	// Store is the object store whose CDC quarantines and paused shards are reported
	// (nil: none read).
	Store   objstore.Store
	Timeout time.Duration // per scrape (default 10s)
	Log     *slog.Logger

	mu sync.Mutex // one scrape at a time: each opens connections to every shard
}

var descs = func() map[string]*prometheus.Desc {
	m := map[string]*prometheus.Desc{}
	for _, f := range Catalog {
		if f.Source == FromExporter {
			m[f.Name] = prometheus.NewDesc(f.Name, f.Help, f.Labels, nil)
		}
	}
	return m
}()

// Describe sends the exporter's families.
func (e *Exporter) Describe(ch chan<- *prometheus.Desc) {
	for _, d := range descs {
		ch <- d
	}
}

// Collect reads every source and sends what it read.
func (e *Exporter) Collect(ch chan<- prometheus.Metric) {
	e.mu.Lock()
	defer e.mu.Unlock()
	began := time.Now()
	timeout := e.Timeout
	if timeout <= 0 {
		timeout = 10 * time.Second
	}
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	fleet := e.Registry.Fleet
	gauge := func(name string, v float64, labels ...string) {
		ch <- prometheus.MustNewConstMetric(descs[name], prometheus.GaugeValue, v, append([]string{fleet}, labels...)...)
	}

	var wg sync.WaitGroup
	up := make([]float64, len(e.Registry.Shards))
	for i, s := range e.Registry.Shards {
		if s.State == registry.StateRetired {
			continue
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			up[i] = e.ping(ctx, s.ID)
		}()
	}
	var rep *health.Report
	if e.CDC != nil {
		wg.Go(func() { rep = e.CDC.Check(ctx) })
	}
	var quarantines []cdc.Quarantine
	var pauses []pause.Pause
	var qerr, perr error
	if e.Store != nil {
		wg.Go(func() { quarantines, qerr = cdc.Quarantines(ctx, e.Store) })
		wg.Go(func() { pauses, perr = pause.List(ctx, e.Store) })
	}
	wg.Wait()
	for i, s := range e.Registry.Shards {
		if s.State != registry.StateRetired {
			gauge(ShardUp, up[i], s.ID)
		}
	}
	if rep != nil {
		for _, s := range rep.Shards {
			e.collectCDC(s, gauge)
		}
	}
	if e.Store != nil {
		for _, err := range []error{qerr, perr} {
			if err != nil && e.Log != nil {
				e.Log.Warn("cdc quarantines or pauses not read", slog.String("error", err.Error()))
			}
		}
		gauge(QuarantineRead, b2f(qerr == nil && perr == nil))
		for _, p := range pauses {
			gauge(PausedSince, unix(p.At), p.Shard)
		}
		for _, q := range quarantines {
			gauge(Quarantined, 1, q.Shard, q.Table, q.Topic, strconv.Itoa(int(q.Partition)), strconv.FormatInt(q.Offset, 10))
		}
	}
	gauge(ExporterScrapeTime, time.Since(began).Seconds())
}

func (e *Exporter) ping(ctx context.Context, shard string) float64 {
	dsn := e.ExtractDSNs[shard]
	if dsn == "" {
		return 0
	}
	conn, err := pgx.Connect(ctx, dsn)
	if err == nil {
		defer conn.Close(context.WithoutCancel(ctx))
		var one int
		err = conn.QueryRow(ctx, "SELECT 1").Scan(&one)
	}
	if err != nil {
		if e.Log != nil {
			// pgx errors name host, user and database, never the password
			e.Log.Warn("shard not reachable", slog.String("shard", shard), slog.String("error", strings.SplitN(err.Error(), "\n", 2)[0]))
		}
		return 0
	}
	return 1
}

func (e *Exporter) collectCDC(s health.Shard, gauge func(string, float64, ...string)) {
	read := 1.0
	if len(s.Unknown) > 0 {
		read = 0
		if e.Log != nil {
			e.Log.Warn("cdc state not read", slog.String("shard", s.Shard), slog.String("unknown", strings.Join(s.Unknown, "; ")))
		}
	}
	gauge(CDCRead, read, s.Shard)
	if s.Connector != "" {
		for _, st := range ConnectorStates {
			gauge(ConnectorState, b2f(s.Connector == st), s.Shard, st)
		}
		for _, t := range s.Tasks {
			id, state, _ := strings.Cut(t, ":")
			if _, err := strconv.Atoi(id); err != nil {
				continue
			}
			for _, st := range ConnectorStates[:len(ConnectorStates)-1] {
				gauge(ConnectorTaskState, b2f(state == st), s.Shard, id, st)
			}
		}
	}
	slotRead := true
	for _, u := range s.Unknown {
		if strings.HasPrefix(u, "slot:") || strings.HasPrefix(u, "shard:") {
			slotRead = false
		}
	}
	if slotRead {
		gauge(SlotExists, b2f(s.Slot.Exists), s.Shard)
		if s.Slot.Exists {
			gauge(SlotActive, b2f(s.Slot.Active), s.Shard)
			gauge(SlotLost, b2f(s.Slot.WALStatus == "lost"), s.Shard)
			gauge(SlotRetainedBytes, float64(s.Slot.RetainedBytes), s.Shard)
			gauge(SlotFlushLagBytes, float64(s.Slot.FlushLagBytes), s.Shard)
		}
		if s.Heartbeat >= 0 {
			gauge(HeartbeatAge, s.Heartbeat.Seconds(), s.Shard)
		}
	}
	kafkaRead := true
	for _, u := range s.Unknown {
		if strings.HasPrefix(u, "kafka:") {
			kafkaRead = false
		}
	}
	if kafkaRead {
		gauge(ConsumerLagRecords, float64(s.Lag), s.Shard)
		gauge(ConsumerLagSeconds, s.Oldest.Seconds(), s.Shard)
	}
}

func b2f(b bool) float64 {
	if b {
		return 1
	}
	return 0
}

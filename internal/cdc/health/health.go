// Package health reports, per shard, the state of the near-real-time path
// (`shardctl connectors status`, docs/cdc.md "Monitoring"):
//
//   - the shard's Debezium connector and its tasks (Kafka Connect REST API);
//   - its replication slot: active or not, wal_status, the WAL it retains
//     (pg_current_wal_lsn() - restart_lsn) and the confirmed_flush lag
//     (pg_current_wal_lsn() - confirmed_flush_lsn), in bytes;
//   - the age of Debezium's last heartbeat on the shard (heartbeat.action.query writes
//     it every connector.HeartbeatIntervalMS while the connector streams): how long the
//     source side has not advanced;
//   - the tokenize consumer group's lag over the shard's topics: records not yet
//     committed, and the age (since its commit on the shard) of the oldest of them.
//
// The shard is read through its replication DSN: pg_replication_slots and
// pg_current_wal_lsn() are readable by every role, and the replication role may read
// the heartbeat table (internal/fleet/schema.sql); no other privilege is needed.
//
// A shard is unhealthy when its connector is missing or it or a task is FAILED, when
// its slot is missing or lost, or when the heartbeat age or the oldest pending record's
// age exceeds the SLA (sla.cdc_freshness). A part that cannot be read is reported as
// unknown, never as healthy.
package health

import (
	"context"
	"errors"
	"fmt"
	"io"
	"regexp"
	"sort"
	"strings"
	"sync"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/shopsphere/shardflow/internal/cdc"
	"github.com/shopsphere/shardflow/internal/connector"
	"github.com/shopsphere/shardflow/internal/exitcode"
	"github.com/shopsphere/shardflow/internal/registry"
)

// Checker reads the state of every managed shard. Set the fields, then call Check.
type Checker struct {
	Registry    *registry.Registry
	Connect     *connector.Client
	Brokers     []string
	TopicPrefix string
	Group       string            // the tokenize consumer group (default cdc.DefaultGroup)
	DSNs        map[string]string // shard → its replication DSN; a missing shard is reported unknown
	SLA         time.Duration     // default the registry's sla.cdc_freshness
	Now         func() time.Time
	Opts        []kgo.Opt // extra franz-go options (tests)
}

// Slot is a shard's replication slot as pg_replication_slots reports it.
type Slot struct {
	Name          string
	Exists        bool
	Active        bool
	WALStatus     string // reserved, extended, unreserved or lost
	RetainedBytes int64  // WAL the slot keeps on the shard
	FlushLagBytes int64  // WAL written since the position Debezium confirmed
}

// Shard is the state of one shard's path.
type Shard struct {
	Shard     string
	Connector string   // RUNNING, PAUSED, FAILED, ... or MISSING; "" when Connect was not read
	Tasks     []string // "0:RUNNING"
	Slot      Slot
	// Heartbeat is the age of the shard's heartbeat row (-1: no row yet).
	Heartbeat time.Duration
	Lag       int64         // records of the shard's topics the group has not committed
	Oldest    time.Duration // age of the oldest of them since its commit on the shard (0: none)
	Problems  []string      // why the shard is unhealthy
	Unknown   []string      // what could not be read, and why
}

// Healthy reports whether nothing is wrong and everything was read.
func (s Shard) Healthy() bool { return len(s.Problems) == 0 && len(s.Unknown) == 0 }

// Report is one Check.
type Report struct {
	At     time.Time
	SLA    time.Duration
	Plugin string // the Debezium plugin version the worker runs ("" when unknown)
	Shards []Shard
}

// Check reads every managed shard; the report's Err says whether the path is healthy.
// A part that cannot be read (Connect, Kafka, a shard) is reported in the shards it
// concerns, so the others are still checked.
func (c *Checker) Check(ctx context.Context) *Report {
	now := time.Now
	if c.Now != nil {
		now = c.Now
	}
	sla := c.SLA
	if sla <= 0 {
		sla = c.Registry.SLA.CDCFreshness.Duration
	}
	group := c.Group
	if group == "" {
		group = cdc.DefaultGroup
	}
	rep := &Report{At: now().UTC(), SLA: sla}
	var ids []string
	for _, s := range c.Registry.Shards {
		if connector.Managed(s) {
			ids = append(ids, s.ID)
		}
	}
	// Connect, each shard and Kafka are read at the same time, each part into its own
	// copy of the shards' state, so one that hangs until ctx ends (an unreachable
	// broker, a shard that does not answer) does not leave the others unread.
	fresh := func() map[string]*Shard {
		m := map[string]*Shard{}
		for _, id := range ids {
			m[id] = &Shard{Shard: id, Heartbeat: -1, Slot: Slot{Name: connector.SlotName(id)}}
		}
		return m
	}
	fromConnect, fromShards, fromKafka := fresh(), fresh(), fresh()
	var wg sync.WaitGroup
	wg.Go(func() { c.readConnect(ctx, rep, ids, fromConnect) })
	for _, id := range ids {
		wg.Go(func() { c.readShard(ctx, fromShards[id]) })
	}
	wg.Go(func() { c.readKafka(ctx, group, ids, fromKafka, now()) })
	wg.Wait()

	for _, id := range ids {
		s := fromShards[id]
		cs, ks := fromConnect[id], fromKafka[id]
		s.Connector, s.Tasks = cs.Connector, cs.Tasks
		s.Lag, s.Oldest = ks.Lag, ks.Oldest
		s.Unknown = append(append(cs.Unknown, s.Unknown...), ks.Unknown...)
		judge(s, sla)
		rep.Shards = append(rep.Shards, *s)
	}
	return rep
}

func (c *Checker) readConnect(ctx context.Context, rep *Report, ids []string, by map[string]*Shard) {
	if ps, err := c.Connect.Plugins(ctx); err == nil {
		for _, p := range ps {
			if strings.HasSuffix(p.Class, ".PostgresConnector") {
				rep.Plugin = p.Version
			}
		}
	}
	for _, id := range ids {
		s := by[id]
		st, err := c.Connect.Status(ctx, connector.Name(id))
		switch {
		case errors.Is(err, connector.ErrNotFound):
			s.Connector = "MISSING"
		case err != nil:
			s.Unknown = append(s.Unknown, fmt.Sprintf("connector: %v", err))
		default:
			s.Connector = st.Connector.State
			for _, t := range st.Tasks {
				s.Tasks = append(s.Tasks, fmt.Sprintf("%d:%s", t.ID, t.State.State))
			}
		}
	}
}

const slotQuery = `SELECT s.active, coalesce(s.wal_status, ''),
  coalesce(pg_wal_lsn_diff(pg_current_wal_lsn(), s.restart_lsn), 0)::bigint,
  coalesce(pg_wal_lsn_diff(pg_current_wal_lsn(), s.confirmed_flush_lsn), 0)::bigint
FROM pg_replication_slots s WHERE s.slot_name = $1`

func (c *Checker) readShard(ctx context.Context, s *Shard) {
	dsn := c.DSNs[s.Shard]
	if dsn == "" {
		s.Unknown = append(s.Unknown, "slot: no replication DSN given")
		return
	}
	cctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	conn, err := pgx.Connect(cctx, dsn)
	if err != nil {
		// pgx errors do not carry the password; keep only the first line
		s.Unknown = append(s.Unknown, "shard: "+firstLine(err.Error()))
		return
	}
	defer conn.Close(context.Background())
	err = conn.QueryRow(cctx, slotQuery, s.Slot.Name).Scan(&s.Slot.Active, &s.Slot.WALStatus, &s.Slot.RetainedBytes, &s.Slot.FlushLagBytes)
	switch {
	case errors.Is(err, pgx.ErrNoRows):
	case err != nil:
		s.Unknown = append(s.Unknown, "slot: "+firstLine(err.Error()))
	default:
		s.Slot.Exists = true
	}
	var age float64
	err = conn.QueryRow(cctx, `SELECT extract(epoch FROM now() - beat_at)::float8 FROM `+connector.Schema+`.`+connector.HeartbeatTable+` WHERE id = 1`).Scan(&age)
	switch {
	case errors.Is(err, pgx.ErrNoRows):
	case err != nil:
		s.Unknown = append(s.Unknown, "heartbeat: "+firstLine(err.Error()))
	default:
		s.Heartbeat = max(0, time.Duration(age*float64(time.Second))).Round(time.Second)
	}
}

// readKafka computes the group's lag over every shard's change topics: end offset minus
// the committed offset (or the log start when the group never committed: the
// consumer starts there), and reads the oldest pending record of each lagging
// partition for its commit time.
func (c *Checker) readKafka(ctx context.Context, group string, ids []string, by map[string]*Shard, now time.Time) {
	unknown := func(err error) {
		for _, id := range ids {
			by[id].Unknown = append(by[id].Unknown, "kafka: "+err.Error())
		}
	}
	cl, err := kgo.NewClient(append([]kgo.Opt{kgo.SeedBrokers(c.Brokers...)}, c.Opts...)...)
	if err != nil {
		unknown(err)
		return
	}
	defer cl.Close()
	kctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	adm := kadm.NewClient(cl)
	var tables []string
	for _, t := range c.Registry.Tables {
		tables = append(tables, t.Name)
	}
	re := regexp.MustCompile(connector.TopicPattern(c.TopicPrefix, tables))
	tds, err := adm.ListTopics(kctx)
	if err != nil {
		unknown(fmt.Errorf("list topics: %w", err))
		return
	}
	shardOf := map[string]string{}
	var topics []string
	for _, t := range tds.Names() {
		if m := re.FindStringSubmatch(t); m != nil && by[m[1]] != nil {
			shardOf[t] = m[1]
			topics = append(topics, t)
		}
	}
	if len(topics) == 0 {
		return
	}
	starts, err := adm.ListStartOffsets(kctx, topics...)
	if err == nil {
		err = starts.Error()
	}
	if err != nil {
		unknown(fmt.Errorf("list start offsets: %w", err))
		return
	}
	ends, err := adm.ListEndOffsets(kctx, topics...)
	if err == nil {
		err = ends.Error()
	}
	if err != nil {
		unknown(fmt.Errorf("list end offsets: %w", err))
		return
	}
	committed, err := adm.FetchOffsets(kctx, group)
	if err != nil && !errors.Is(err, kerr.GroupIDNotFound) {
		unknown(fmt.Errorf("fetch offsets of group %s: %w", group, err))
		return
	}
	pending := map[string]map[int32]kgo.Offset{}
	ends.Each(func(e kadm.ListedOffset) {
		from := int64(0)
		if s, ok := starts.Lookup(e.Topic, e.Partition); ok {
			from = s.Offset
		}
		if co, ok := committed.Lookup(e.Topic, e.Partition); ok && co.Err == nil && co.At > from {
			from = co.At
		}
		if e.Offset <= from {
			return
		}
		by[shardOf[e.Topic]].Lag += e.Offset - from
		if pending[e.Topic] == nil {
			pending[e.Topic] = map[int32]kgo.Offset{}
		}
		pending[e.Topic][e.Partition] = kgo.NewOffset().At(from)
	})
	if len(pending) == 0 {
		return
	}
	ages, err := c.oldest(kctx, pending, now)
	if err != nil {
		for t := range pending {
			s := by[shardOf[t]]
			s.Unknown = append(s.Unknown, "oldest pending record: "+err.Error())
		}
		return
	}
	for t, age := range ages {
		if s := by[shardOf[t]]; age > s.Oldest {
			s.Oldest = age
		}
	}
}

// oldest reads the first pending record of every partition and returns, per topic, the
// largest age since its commit on the shard (the record's source.ts_us, else its Kafka
// timestamp).
func (c *Checker) oldest(ctx context.Context, pending map[string]map[int32]kgo.Offset, now time.Time) (map[string]time.Duration, error) {
	cl, err := kgo.NewClient(append([]kgo.Opt{kgo.SeedBrokers(c.Brokers...), kgo.ConsumePartitions(pending),
		kgo.FetchMaxPartitionBytes(1 << 20)}, c.Opts...)...)
	if err != nil {
		return nil, err
	}
	defer cl.Close()
	want := 0
	for _, ps := range pending {
		want += len(ps)
	}
	seen := map[string]map[int32]bool{}
	out := map[string]time.Duration{}
	for n := 0; n < want; {
		fs := cl.PollFetches(ctx)
		if ctx.Err() != nil {
			return nil, fmt.Errorf("read %d of %d partitions: %w", n, want, ctx.Err())
		}
		var ferr error
		fs.EachError(func(t string, p int32, err error) { ferr = fmt.Errorf("fetch %s/%d: %w", t, p, err) })
		if ferr != nil {
			return nil, ferr
		}
		fs.EachPartition(func(fp kgo.FetchTopicPartition) {
			if len(fp.Records) == 0 || seen[fp.Topic][fp.Partition] {
				return
			}
			if seen[fp.Topic] == nil {
				seen[fp.Topic] = map[int32]bool{}
			}
			seen[fp.Topic][fp.Partition] = true
			n++
			r := fp.Records[0]
			at := r.Timestamp
			if ev, err := cdc.DecodeEvent(r.Value); err == nil {
				at = ev.CommitTS
			}
			if age := now.Sub(at); age > out[fp.Topic] {
				out[fp.Topic] = age
			}
			cl.PauseFetchPartitions(map[string][]int32{fp.Topic: {fp.Partition}})
		})
	}
	return out, nil
}

func judge(s *Shard, sla time.Duration) {
	switch s.Connector {
	case "":
	case "MISSING":
		s.Problems = append(s.Problems, "no connector (shardctl connectors apply)")
	case "FAILED":
		s.Problems = append(s.Problems, "connector FAILED")
	}
	for _, t := range s.Tasks {
		if strings.HasSuffix(t, ":FAILED") {
			s.Problems = append(s.Problems, "task "+strings.TrimSuffix(t, ":FAILED")+" FAILED")
		}
	}
	readSlot := !hasPrefix(s.Unknown, "slot:") && !hasPrefix(s.Unknown, "shard:")
	if readSlot && s.Connector != "MISSING" && s.Connector != "" {
		switch {
		case !s.Slot.Exists:
			s.Problems = append(s.Problems, "replication slot "+s.Slot.Name+" missing")
		case s.Slot.WALStatus == "lost":
			s.Problems = append(s.Problems, "replication slot "+s.Slot.Name+" lost its WAL (re-snapshot: docs/runbooks/cdc-lag.md)")
		}
	}
	if s.Heartbeat > sla && s.Connector != "MISSING" {
		s.Problems = append(s.Problems, fmt.Sprintf("last heartbeat %s ago > sla %s (the connector does not stream)", s.Heartbeat, sla))
	}
	if s.Oldest > sla {
		s.Problems = append(s.Problems, fmt.Sprintf("oldest unconsumed change %s old > sla %s (tokenize cdc is behind)", s.Oldest.Round(time.Second), sla))
	}
}

func hasPrefix(xs []string, p string) bool {
	for _, x := range xs {
		if strings.HasPrefix(x, p) {
			return true
		}
	}
	return false
}

func firstLine(s string) string {
	if i := strings.IndexByte(s, '\n'); i >= 0 {
		return s[:i]
	}
	return s
}

// Err is nil when every shard is healthy. Otherwise it names every unhealthy shard
// and why: exit code 3 when a check failed, 75 when something could only not be read.
func (r *Report) Err() error {
	var bad, unknown []string
	for _, s := range r.Shards {
		if len(s.Problems) > 0 {
			bad = append(bad, fmt.Sprintf("shard %s: %s", s.Shard, strings.Join(s.Problems, "; ")))
		}
		if len(s.Unknown) > 0 {
			unknown = append(unknown, fmt.Sprintf("shard %s: %s", s.Shard, strings.Join(s.Unknown, "; ")))
		}
	}
	switch {
	case len(bad) > 0:
		return exitcode.Errorf(exitcode.CheckFail, "cdc unhealthy: %s", strings.Join(append(bad, unknown...), " | "))
	case len(unknown) > 0:
		return exitcode.Errorf(exitcode.Retryable, "cdc status unknown: %s", strings.Join(unknown, " | "))
	}
	return nil
}

// Write prints the report as a table, one line per shard, then what is wrong.
func (r *Report) Write(w io.Writer) {
	plugin := r.Plugin
	if plugin == "" {
		plugin = "unknown"
	}
	fmt.Fprintf(w, "cdc status at %s (sla %s, Debezium %s)\n", r.At.Format(time.RFC3339), r.SLA, plugin)
	fmt.Fprintf(w, "%-6s %-9s %-12s %-18s %13s %13s %9s %10s %10s  %s\n",
		"shard", "connector", "tasks", "slot", "retained WAL", "flush lag", "heartbeat", "lag", "oldest", "state")
	sort.Slice(r.Shards, func(i, j int) bool { return r.Shards[i].Shard < r.Shards[j].Shard })
	for _, s := range r.Shards {
		conn, tasks := s.Connector, strings.Join(s.Tasks, ",")
		if conn == "" {
			conn = "?"
		}
		if tasks == "" {
			tasks = "-"
		}
		slot, retained, flush := "?", "?", "?"
		if !hasPrefix(s.Unknown, "slot:") && !hasPrefix(s.Unknown, "shard:") {
			switch {
			case !s.Slot.Exists:
				slot, retained, flush = "none", "-", "-"
			default:
				state := "inactive"
				if s.Slot.Active {
					state = "active"
				}
				slot, retained, flush = state+"/"+s.Slot.WALStatus, Bytes(s.Slot.RetainedBytes), Bytes(s.Slot.FlushLagBytes)
			}
		}
		hb := "-"
		if s.Heartbeat >= 0 {
			hb = s.Heartbeat.String()
		}
		oldest := "-"
		if s.Oldest > 0 {
			oldest = s.Oldest.Round(time.Second).String()
		}
		state := "ok"
		switch {
		case len(s.Problems) > 0:
			state = "UNHEALTHY"
		case len(s.Unknown) > 0:
			state = "UNKNOWN"
		}
		fmt.Fprintf(w, "%-6s %-9s %-12s %-18s %13s %13s %9s %10d %10s  %s\n",
			s.Shard, conn, tasks, slot, retained, flush, hb, s.Lag, oldest, state)
	}
	for _, s := range r.Shards {
		for _, p := range s.Problems {
			fmt.Fprintf(w, "  %s: %s\n", s.Shard, p)
		}
		for _, u := range s.Unknown {
			fmt.Fprintf(w, "  %s: not read: %s\n", s.Shard, u)
		}
	}
}

// Bytes formats a byte count with a binary unit ("1.5 MiB").
func Bytes(n int64) string {
	const unit = 1024
	if n < unit {
		return fmt.Sprintf("%d B", n)
	}
	div, exp := int64(unit), 0
	for m := n / unit; m >= unit; m /= unit {
		div *= unit
		exp++
	}
	return fmt.Sprintf("%.1f %ciB", float64(n)/float64(div), "KMGTPE"[exp])
}

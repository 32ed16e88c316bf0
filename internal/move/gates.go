package move

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/shopsphere/shardflow/internal/connector"
	"github.com/shopsphere/shardflow/internal/exitcode"
	"github.com/shopsphere/shardflow/internal/landing"
	"github.com/shopsphere/shardflow/internal/registry"
	"github.com/shopsphere/shardflow/internal/warehouse"
)

// PipelineGates answers cleanup's questions from the warehouse's load history and from
// Kafka (Gates).
type PipelineGates struct {
	Registry  *registry.Registry
	Warehouse warehouse.Warehouse
	// Kafka: the environment's brokers and topic prefix, and the consumer group of
	// tokenize cdc; no brokers means the environment has no CDC.
	Brokers     []string
	TopicPrefix string
	Group       string
	// ReplicationDSN returns a shard's DSN to read its Debezium slot.
	ReplicationDSN func(shard string) (string, error)
	// Opts are extra franz-go options (tests).
	Opts []kgo.Opt
}

var _ Gates = (*PipelineGates)(nil)

// BatchLoaded checks the load history for every aligned batch window of shard and t
// from extract.start (or, when unset, the day before through) up to the one holding
// through.
func (g *PipelineGates) BatchLoaded(ctx context.Context, shard string, t registry.Table, through time.Time) (bool, string, error) {
	size := g.Registry.Extract.Window.Duration
	last := through.UTC().Truncate(size)
	first := g.Registry.Extract.Start.UTC()
	if first.IsZero() || first.After(last) {
		first = last.Add(-24 * time.Hour).Truncate(size)
	}
	hist, err := g.Warehouse.History(ctx, warehouse.HistoryFilter{Table: t.Name, Shard: shard})
	if err != nil {
		return false, "", retry(fmt.Errorf("read load history of %s/%s: %w", shard, t.Name, err))
	}
	loaded := map[string]bool{}
	for _, h := range hist {
		loaded[h.FileKey] = true
	}
	var missing []string
	for w := first; !w.After(last); w = w.Add(size) {
		if !loaded[landing.BatchKey(t.Name, shard, w, w.Add(size))] {
			missing = append(missing, w.Format("2006-01-02T15:04Z"))
		}
	}
	if len(missing) > 0 {
		more := ""
		if len(missing) > 3 {
			more = fmt.Sprintf(" and %d more", len(missing)-3)
			missing = missing[:3]
		}
		return false, fmt.Sprintf("%s windows of %s not loaded yet: %v%s", t.Name, shard, missing, more), nil
	}
	return true, "", nil
}

// CDCConsumed checks that Debezium has read the shard's WAL past lsn (its slot's
// confirmed position) and that tokenize cdc's group has committed, on every topic of
// the shard, the end offsets read after that: every event before the marker is then
// landed.
func (g *PipelineGates) CDCConsumed(ctx context.Context, shard string, lsn string) (bool, string, error) {
	if len(g.Brokers) == 0 {
		return true, "the environment has no CDC", nil
	}
	dsn, err := g.ReplicationDSN(shard)
	if err != nil {
		return false, "", usage(err)
	}
	conn, err := pgx.Connect(ctx, dsn)
	if err != nil {
		return false, "", retry(fmt.Errorf("connect shard %s: %w", shard, redactErr(err, dsn)))
	}
	defer conn.Close(context.WithoutCancel(ctx))
	var past *bool
	err = conn.QueryRow(ctx, "SELECT confirmed_flush_lsn >= $2::pg_lsn FROM pg_replication_slots WHERE slot_name = $1", connector.SlotName(shard), lsn).Scan(&past)
	if errors.Is(err, pgx.ErrNoRows) {
		return false, "", exitcode.Errorf(exitcode.Usage, "shard %s has no Debezium slot %s: its connector is not applied (shardctl connectors apply), so CDC cannot have its changes", shard, connector.SlotName(shard))
	}
	if err != nil {
		return false, "", retry(fmt.Errorf("shard %s: read slot %s: %w", shard, connector.SlotName(shard), err))
	}
	if past == nil || !*past {
		return false, fmt.Sprintf("Debezium has not confirmed %s's WAL past %s yet", shard, lsn), nil
	}
	cl, err := kgo.NewClient(append([]kgo.Opt{kgo.SeedBrokers(g.Brokers...)}, g.Opts...)...)
	if err != nil {
		return false, "", usage(fmt.Errorf("kafka: %w", err))
	}
	defer cl.Close()
	adm := kadm.NewClient(cl)
	var topics []string
	for _, t := range g.Registry.Tables {
		topics = append(topics, connector.Topic(g.TopicPrefix, shard, t.Name))
	}
	ends, err := adm.ListEndOffsets(ctx, topics...)
	if err != nil {
		return false, "", retry(fmt.Errorf("kafka: end offsets: %w", err))
	}
	committed, err := adm.FetchOffsets(ctx, g.Group)
	if err != nil && !errors.Is(err, kerr.GroupIDNotFound) {
		return false, "", retry(fmt.Errorf("kafka: offsets of group %s: %w", g.Group, err))
	}
	var behind []string
	ends.Each(func(o kadm.ListedOffset) {
		if errors.Is(o.Err, kerr.UnknownTopicOrPartition) {
			return // no event of this table on the shard ever
		}
		if o.Err != nil {
			behind = append(behind, fmt.Sprintf("%s: %v", o.Topic, o.Err))
			return
		}
		at := int64(0)
		if c, ok := committed.Lookup(o.Topic, o.Partition); ok && c.Err == nil {
			at = c.At
		}
		if at < o.Offset {
			behind = append(behind, fmt.Sprintf("%s/%d at %d of %d", o.Topic, o.Partition, at, o.Offset))
		}
	})
	if len(behind) > 0 {
		return false, fmt.Sprintf("tokenize cdc (group %s) has not landed %s's events through the marker: %v", g.Group, shard, behind), nil
	}
	return true, fmt.Sprintf("CDC landed through %s", lsn), nil
}

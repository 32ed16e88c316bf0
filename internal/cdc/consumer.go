// Package cdc is the near-real-time path's consumer (`tokenize cdc`): it reads the
// Debezium change topics of every shard from Kafka, turns each change event into the
// landed schema of its table plus CDC lineage, tokenizes PCI columns with the same
// function as the batch path, and lands Parquet files named by (topic, partition,
// offset range) with their manifests. Offsets are committed only after a file and its
// manifest are stored.
//
// Exactly-once at the file level (docs/cdc.md): a file's records are cut at fixed
// offset blocks (offset / FileRecords), at the bounded end, or after FlushInterval in
// follow mode; once a file has landed its boundaries never change. A consumer that
// died after landing a file but before committing finds that file on restart (its
// manifest starts at the committed offset), adopts it and commits past it instead of
// cutting the records again; a data file without a manifest is deleted and rewritten.
package cdc

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"regexp"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/shopsphere/shardflow/internal/connector"
	"github.com/shopsphere/shardflow/internal/exitcode"
	"github.com/shopsphere/shardflow/internal/fence"
	"github.com/shopsphere/shardflow/internal/landing"
	"github.com/shopsphere/shardflow/internal/objstore"
	"github.com/shopsphere/shardflow/internal/registry"
)

// DefaultGroup is the consumer group of `tokenize cdc`.
const DefaultGroup = "shardflow-tokenize-cdc"

// Consumer lands change events from Kafka. Set the exported fields, then call Run;
// Run fills the defaults in on its own copy and never changes the fields.
type Consumer struct {
	Registry    *registry.Registry
	Brokers     []string
	TopicPrefix string // the environment's kafka.topic_prefix
	Group       string // default DefaultGroup
	// InstanceID, when set, makes the consumer a static member of its group (KIP-345):
	// a restarted process with the same id takes over its partitions at once instead
	// of waiting for the dead member's session to time out. Give each concurrently
	// running consumer its own id; a second process with the same id fences the first.
	InstanceID string
	Store      objstore.Store
	// Fences reads a shard's fence rows while it is in a pending move (nil: such a
	// shard's files fail, exit 2).
	Fences *fence.Views
	// NewWriter writes the landed files. The consumer holds no tokenizer key: PCI
	// values arrive tokenized by the connector's transform (docs/pci.md) and are
	// verified (tokenize.Verifier); a value in clear is a poison event.
	NewWriter landing.NewFileWriter
	// FileRecords is the offset block a file never crosses (default 10000).
	FileRecords int64
	// FlushInterval (follow mode) cuts a partial file once its first record has waited
	// this long (default 30s). It bounds the consumer's share of the freshness.
	FlushInterval time.Duration
	CodeVersion   string
	Log           *slog.Logger     // default: discard
	Now           func() time.Time // default time.Now
	// Failpoint, when set (tests only), is called at "data" (data file stored, manifest
	// not) and "manifest" (manifest stored, offset not committed) with the data key; an
	// error stops the run there.
	Failpoint func(step, key string) error
	// Opts are extra franz-go options (tests).
	Opts []kgo.Opt
}

// Summary is what one run did on one shard.
type Summary struct {
	Shard   string
	Files   int
	Adopted int   // files landed by an earlier run whose commit was lost
	Records int64 // Kafka records consumed into files
	Rows    int64 // rows landed
	Unowned int64 // changes dropped: the shard did not own the bucket at the change's instant
	// Quarantined are the shard's partitions stopped at a poison event; they do not
	// fail the run (Err), so the other shards' loading goes on.
	Quarantined []Quarantine
	// Paused: the shard is paused by an operator (internal/pause); its partitions were
	// left at their committed offsets.
	Paused bool
	// SkippedByDecision counts events dropped by an operator's skip decision.
	SkippedByDecision int
	Err               error // the first error of this shard's partitions (the others went on)
}

// configured is a copy of c with the defaults filled in, or the reason c cannot run.
// Run works on it only, so the caller's Consumer is never changed.
func (c *Consumer) configured() (*Consumer, error) {
	if c.Store == nil || c.NewWriter == nil || c.Registry == nil {
		return nil, exitcode.Errorf(exitcode.Usage, "cdc consumer: store, writer and registry are required")
	}
	cfg := *c
	if cfg.Group == "" {
		cfg.Group = DefaultGroup
	}
	if cfg.FileRecords <= 0 {
		cfg.FileRecords = 10000
	}
	if cfg.FlushInterval <= 0 {
		cfg.FlushInterval = 30 * time.Second
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	if cfg.Log == nil {
		cfg.Log = slog.New(slog.NewTextHandler(io.Discard, nil))
	}
	return &cfg, nil
}

func (c *Consumer) tables() []string {
	var ts []string
	for _, t := range c.Registry.Tables {
		ts = append(ts, t.Name)
	}
	return ts
}

// Pattern is the topic regex the consumer subscribes with.
func (c *Consumer) Pattern() string { return connector.TopicPattern(c.TopicPrefix, c.tables()) }

// Run consumes until ctx ends (follow) or, when bounded, until every partition that
// matched at the start has been landed up to its end offset at the start. Partitions
// that fail stop alone; Run returns their errors joined (the worst exit code wins)
// after the others finished.
func (c *Consumer) Run(ctx context.Context, bounded bool) ([]Summary, error) {
	cfg, err := c.configured()
	if err != nil {
		return nil, err
	}
	r, err := cfg.newSession(ctx, bounded)
	if err != nil || r == nil {
		return nil, err
	}
	defer r.close()
	if err := r.loop(ctx); err != nil {
		return r.summaries(), err
	}
	return r.finish()
}

// MaxRetryBackoff caps the wait before a follow-mode partition retries a retryable
// failure (the waits double from 1s).
const MaxRetryBackoff = time.Minute

// QuarantineRecheck is how often a follow-mode consumer looks whether a quarantined
// partition was released or a paused shard resumed.
const QuarantineRecheck = 30 * time.Second

// ShutdownGrace is how long a file being landed and its offset commit may take once
// the consumer was told to stop.
const ShutdownGrace = 30 * time.Second

// graceful returns a context that ends grace after ctx ends (or when cancel is called).
func graceful(ctx context.Context, grace time.Duration) (context.Context, context.CancelFunc) {
	wctx, cancel := context.WithCancel(context.WithoutCancel(ctx))
	stop := context.AfterFunc(ctx, func() {
		t := time.AfterFunc(grace, cancel)
		context.AfterFunc(wctx, func() { t.Stop() })
	})
	return wctx, func() { stop(); cancel() }
}

// targets lists the partitions of the topics matching re with records not yet
// committed by the group, and their end offsets now: a bounded run stops there.
func (c *Consumer) targets(ctx context.Context, re *regexp.Regexp) (map[tp]int64, error) {
	cl, err := kgo.NewClient(append([]kgo.Opt{kgo.SeedBrokers(c.Brokers...)}, c.Opts...)...)
	if err != nil {
		return nil, exitcode.Wrap(exitcode.Usage, fmt.Errorf("cdc consumer: %w", err))
	}
	defer cl.Close()
	adm := kadm.NewClient(cl)
	tds, err := adm.ListTopics(ctx)
	if err != nil {
		return nil, exitcode.Wrap(exitcode.Retryable, fmt.Errorf("list topics: %w", err))
	}
	var topics []string
	for _, t := range tds.Names() {
		if m := re.FindStringSubmatch(t); m != nil {
			if _, ok := c.Registry.Shard(m[1]); ok {
				topics = append(topics, t)
			}
		}
	}
	if len(topics) == 0 {
		return nil, nil
	}
	ends, err := adm.ListEndOffsets(ctx, topics...)
	if err != nil {
		return nil, exitcode.Wrap(exitcode.Retryable, fmt.Errorf("list end offsets: %w", err))
	}
	committed, err := adm.FetchOffsets(ctx, c.Group)
	if err != nil && !errors.Is(err, kerr.GroupIDNotFound) {
		return nil, exitcode.Wrap(exitcode.Retryable, fmt.Errorf("fetch offsets of group %s: %w", c.Group, err))
	}
	out := map[tp]int64{}
	ends.Each(func(o kadm.ListedOffset) {
		if o.Err != nil || o.Offset <= 0 {
			return
		}
		if co, ok := committed.Lookup(o.Topic, o.Partition); ok && co.Err == nil && co.At >= o.Offset {
			return
		}
		out[tp{o.Topic, o.Partition}] = o.Offset
	})
	return out, nil
}

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
	"sort"
	"sync"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/shopsphere/shardflow/internal/connector"
	"github.com/shopsphere/shardflow/internal/exitcode"
	"github.com/shopsphere/shardflow/internal/landing"
	"github.com/shopsphere/shardflow/internal/objstore"
	"github.com/shopsphere/shardflow/internal/registry"
)

// DefaultGroup is the consumer group of `tokenize cdc`.
const DefaultGroup = "shardflow-tokenize-cdc"

// Consumer lands change events from Kafka. Set the exported fields, then call Run.
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
	Tokenizer  landing.Tokenizer
	NewWriter  landing.NewFileWriter
	// FileRecords is the offset block a file never crosses (default 10000).
	FileRecords int64
	// FlushInterval (follow mode) cuts a partial file once its first record has waited
	// this long (default 30s). It bounds the consumer's share of the freshness.
	FlushInterval time.Duration
	CodeVersion   string
	Log           *slog.Logger
	Now           func() time.Time
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
	Err     error // the first error of this shard's partitions (the others went on)
}

type partState struct {
	topic, shard, table string
	p                   int32
	recs                []*kgo.Record
	firstAt             time.Time
	checked             bool
	skipTo              int64
	target              int64 // bounded: consume offsets < target; -1 follow
	lastSeen            int64
	failed              error
	unknown             bool          // the topic's shard is not in shards.yaml
	next                int64         // the group's committed offset: where a retry resumes (-1 unknown)
	retryAt             time.Time     // follow mode: when a retryable failure is retried
	backoff             time.Duration // the last wait before a retry
	resumed             bool          // retried: records after next are stale fetches until next arrives
}

type tp struct {
	topic string
	p     int32
}

func (c *Consumer) now() time.Time {
	if c.Now != nil {
		return c.Now()
	}
	return time.Now()
}

func (c *Consumer) log() *slog.Logger {
	if c.Log != nil {
		return c.Log
	}
	return slog.New(slog.NewTextHandler(io.Discard, nil))
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
	if c.Group == "" {
		c.Group = DefaultGroup
	}
	if c.FileRecords <= 0 {
		c.FileRecords = 10000
	}
	if c.FlushInterval <= 0 {
		c.FlushInterval = 30 * time.Second
	}
	if c.Store == nil || c.Tokenizer == nil || c.NewWriter == nil || c.Registry == nil {
		return nil, exitcode.Errorf(exitcode.Usage, "cdc consumer: store, tokenizer, writer and registry are required")
	}
	mappers := map[string]*mapper{}
	for _, t := range c.Registry.Tables {
		m, err := c.newMapper(t)
		if err != nil {
			return nil, exitcode.Wrap(exitcode.Usage, err)
		}
		mappers[t.Name] = m
	}
	re := regexp.MustCompile(c.Pattern())
	log := c.log()

	var targets map[tp]int64
	if bounded {
		var err error
		targets, err = c.targets(ctx, re)
		if err != nil {
			return nil, err
		}
		if len(targets) == 0 {
			log.Info("cdc caught up: nothing to consume", "group", c.Group)
			return nil, nil
		}
	}

	var mu sync.Mutex
	states := map[tp]*partState{}
	sums := map[string]*Summary{}
	sum := func(shard string) *Summary {
		s := sums[shard]
		if s == nil {
			s = &Summary{Shard: shard}
			sums[shard] = s
		}
		return s
	}
	drop := func(_ context.Context, _ *kgo.Client, lost map[string][]int32) {
		mu.Lock()
		defer mu.Unlock()
		for t, ps := range lost {
			for _, p := range ps {
				delete(states, tp{t, p}) // buffered records were not committed; the next owner reads them
			}
		}
	}
	opts := []kgo.Opt{
		kgo.SeedBrokers(c.Brokers...),
		kgo.ConsumerGroup(c.Group),
		kgo.ConsumeRegex(),
		kgo.ConsumeTopics(c.Pattern()),
		kgo.DisableAutoCommit(),
		kgo.BlockRebalanceOnPoll(),
		kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()),
		kgo.OnPartitionsRevoked(drop),
		kgo.OnPartitionsLost(drop),
		kgo.MetadataMaxAge(10 * time.Second), // a new shard's topics are found within seconds
		kgo.MetadataMinAge(2 * time.Second),
		kgo.FetchMaxWait(500 * time.Millisecond),
		kgo.FetchIsolationLevel(kgo.ReadCommitted()),
	}
	if c.InstanceID != "" {
		opts = append(opts, kgo.InstanceID(c.InstanceID))
	}
	cl, err := kgo.NewClient(append(opts, c.Opts...)...)
	if err != nil {
		return nil, exitcode.Wrap(exitcode.Usage, fmt.Errorf("cdc consumer: %w", err))
	}
	defer cl.Close()
	// A file being landed and its commit finish when ctx ends (SIGTERM) rather than
	// fail their partition; a stuck store or broker still gets ShutdownGrace.
	wctx, wcancel := graceful(ctx, ShutdownGrace)
	defer wcancel()

	commit := func(st *partState, next int64) error {
		var cerr error
		cl.CommitOffsetsSync(wctx, map[string]map[int32]kgo.EpochOffset{st.topic: {st.p: {Epoch: -1, Offset: next}}},
			func(_ *kgo.Client, _ *kmsg.OffsetCommitRequest, resp *kmsg.OffsetCommitResponse, err error) {
				if err != nil {
					cerr = err
					return
				}
				for _, t := range resp.Topics {
					for _, p := range t.Partitions {
						if e := kerr.ErrorForCode(p.ErrorCode); e != nil {
							cerr = e
						}
					}
				}
			})
		if cerr != nil {
			return exitcode.Wrap(exitcode.Retryable, fmt.Errorf("commit offset %d of %s/%d: %w", next, st.topic, st.p, cerr))
		}
		st.next = next
		return nil
	}

	flush := func(st *partState) error {
		if len(st.recs) == 0 {
			return nil
		}
		j := &fileJob{Topic: st.topic, Shard: st.shard, Table: st.table, Partition: st.p,
			First: st.recs[0].Offset, Last: st.recs[len(st.recs)-1].Offset, FirstTime: st.recs[0].Timestamp}
		for _, r := range st.recs {
			j.Values = append(j.Values, r.Value)
			j.Offsets = append(j.Offsets, r.Offset)
		}
		began := time.Now()
		res, err := c.land(wctx, j, mappers[st.table])
		if err != nil {
			return err
		}
		if c.Failpoint != nil {
			if err := c.Failpoint("manifest", res.Manifest.DataKey); err != nil {
				return err
			}
		}
		if err := commit(st, j.Last+1); err != nil {
			return err
		}
		s := sum(st.shard)
		s.Files++
		s.Records += int64(len(st.recs))
		s.Rows += res.Manifest.Rows
		s.Unowned += res.Unowned
		log.Info("cdc file landed", "shard", st.shard, "table", st.table, "window", fmt.Sprintf("p%d:%d-%d", st.p, j.First, j.Last),
			"rows", res.Manifest.Rows, "unowned", res.Unowned, "duration", time.Since(began).Round(time.Millisecond), "key", res.Manifest.DataKey)
		st.recs = st.recs[:0]
		st.backoff = 0
		return nil
	}

	// fail stops a partition. In follow mode a retryable failure (store or broker
	// unreachable) is retried after a backoff from the committed offset; any other
	// failure, and every failure of a bounded run, stops the partition for the run.
	fail := func(st *partState, err error) {
		st.failed = err
		st.recs = nil
		cl.PauseFetchPartitions(map[string][]int32{st.topic: {st.p}})
		if !bounded && exitcode.Of(err) == exitcode.Retryable && st.next >= 0 {
			st.backoff = min(max(2*st.backoff, time.Second), MaxRetryBackoff)
			st.retryAt = c.now().Add(st.backoff)
			log.Warn("cdc partition paused, will retry", "shard", st.shard, "table", st.table, "window", fmt.Sprintf("p%d:%d-", st.p, st.next),
				"duration", st.backoff, "err", err)
			return
		}
		log.Error("cdc partition stopped", "shard", st.shard, "table", st.table, "window", fmt.Sprintf("p%d", st.p), "err", err)
	}

	// retry resumes the partitions whose backoff has passed: records after the
	// committed offset are read again, and a file landed before a lost commit is
	// adopted as on a restart.
	retry := func() {
		for _, st := range states {
			if st.failed == nil || st.retryAt.IsZero() || c.now().Before(st.retryAt) {
				continue
			}
			cl.SetOffsets(map[string]map[int32]kgo.EpochOffset{st.topic: {st.p: {Epoch: -1, Offset: st.next}}})
			cl.ResumeFetchPartitions(map[string][]int32{st.topic: {st.p}})
			st.failed, st.retryAt, st.checked, st.skipTo, st.resumed = nil, time.Time{}, false, -1, true
			log.Info("cdc partition resumed", "shard", st.shard, "table", st.table, "window", fmt.Sprintf("p%d:%d-", st.p, st.next))
		}
	}

	state := func(topic string, p int32) *partState {
		k := tp{topic, p}
		if st := states[k]; st != nil {
			return st
		}
		st := &partState{topic: topic, p: p, skipTo: -1, target: -1, lastSeen: -1, next: -1}
		if m := re.FindStringSubmatch(topic); m != nil {
			st.shard, st.table = m[1], m[2]
		}
		if bounded {
			t, ok := targets[k]
			if !ok {
				t = 0 // appeared after the start: the next run takes it
			}
			st.target = t
		}
		if _, ok := c.Registry.Shard(st.shard); !ok {
			st.unknown = true
			st.failed = fmt.Errorf("topic %s: shard %q is not in shards.yaml (add it, or delete its connector)", topic, st.shard)
			cl.PauseFetchPartitions(map[string][]int32{topic: {p}})
			log.Warn("cdc topic of an unknown shard skipped", "shard", st.shard, "table", st.table)
		}
		states[k] = st
		return st
	}

	handle := func(st *partState, r *kgo.Record) error {
		if st.failed != nil || (st.target >= 0 && r.Offset >= st.target) {
			return nil
		}
		if st.resumed {
			if r.Offset > st.next {
				return nil // fetched before the seek; read again from next
			}
			st.resumed = false
		}
		if !st.checked {
			st.checked = true
			st.next = r.Offset // the first record after an assignment or a seek is at the committed offset
			last, err := c.recoverFile(wctx, st.table, st.shard, st.p, r.Offset, dayOf(r.Value, r.Timestamp))
			if err != nil {
				return err
			}
			if last >= 0 {
				st.skipTo = last
				if err := commit(st, last+1); err != nil {
					return err
				}
				sum(st.shard).Adopted++
				log.Info("cdc file landed by an earlier run adopted", "shard", st.shard, "table", st.table,
					"window", fmt.Sprintf("p%d:%d-%d", st.p, r.Offset, last))
			}
		}
		if r.Offset <= st.skipTo {
			return nil
		}
		if len(st.recs) > 0 && r.Offset/c.FileRecords != st.recs[0].Offset/c.FileRecords {
			if err := flush(st); err != nil {
				return err
			}
		}
		if len(st.recs) == 0 {
			st.firstAt = c.now()
		}
		st.recs = append(st.recs, r)
		return nil
	}

	done := func() bool {
		if !bounded {
			return false
		}
		for k, t := range targets {
			st := states[k]
			if st == nil {
				return false
			}
			if st.failed != nil {
				continue
			}
			if st.skipTo+1 >= t {
				continue
			}
			if len(st.recs) > 0 || !st.reached(t) {
				return false
			}
		}
		return true
	}

	wait := time.Second
	if c.FlushInterval < wait {
		wait = c.FlushInterval
	}
	for {
		mu.Lock()
		finished := done()
		mu.Unlock()
		if finished {
			break
		}
		pctx, cancel := context.WithTimeout(ctx, wait)
		fs := cl.PollRecords(pctx, 10000)
		cancel()
		if ctx.Err() != nil {
			cl.AllowRebalance()
			if bounded {
				return c.summaries(sums), exitcode.Wrap(exitcode.Retryable, fmt.Errorf("cdc consumer: stopped before caught up: %w", ctx.Err()))
			}
			break // follow mode ends here; buffered records are not committed and are read again
		}
		var fatal error
		fs.EachError(func(t string, p int32, err error) {
			if errors.Is(err, context.DeadlineExceeded) || errors.Is(err, context.Canceled) {
				return
			}
			log.Warn("cdc fetch error", "window", fmt.Sprintf("%s/%d", t, p), "err", err)
			if errors.Is(err, kgo.ErrClientClosed) {
				fatal = err
			}
		})
		if fatal != nil {
			return c.summaries(sums), exitcode.Wrap(exitcode.Retryable, fatal)
		}
		mu.Lock()
		fs.EachPartition(func(fp kgo.FetchTopicPartition) {
			if len(fp.Records) == 0 {
				return // errors were handled above (a poll that timed out has a fake partition -1)
			}
			st := state(fp.Topic, fp.Partition)
			for _, r := range fp.Records {
				if st.failed != nil {
					return
				}
				if err := handle(st, r); err != nil {
					fail(st, err)
				}
				st.lastSeen = r.Offset
			}
		})
		for _, st := range states {
			if st.failed != nil || len(st.recs) == 0 {
				continue
			}
			last := st.recs[len(st.recs)-1].Offset
			if (st.target >= 0 && last+1 >= st.target) || (st.target < 0 && c.now().Sub(st.firstAt) >= c.FlushInterval) {
				if err := flush(st); err != nil {
					fail(st, err)
				}
			}
		}
		if !bounded {
			retry()
		}
		mu.Unlock()
		cl.AllowRebalance()
	}
	// A partition still failed at the end reports its error in its shard's summary.
	keys := make([]tp, 0, len(states))
	for k := range states {
		keys = append(keys, k)
	}
	sort.Slice(keys, func(i, j int) bool {
		return keys[i].topic < keys[j].topic || (keys[i].topic == keys[j].topic && keys[i].p < keys[j].p)
	})
	for _, k := range keys {
		if st := states[k]; st.failed != nil && !st.unknown {
			if s := sum(st.shard); s.Err == nil {
				s.Err = st.failed
			}
		}
	}
	out := c.summaries(sums)
	var errs []error
	for _, s := range out {
		if s.Err != nil {
			errs = append(errs, fmt.Errorf("shard %s: %w", s.Shard, s.Err))
		}
	}
	return out, joinErrors(errs)
}

// MaxRetryBackoff caps the wait before a follow-mode partition retries a retryable
// failure (the waits double from 1s).
const MaxRetryBackoff = time.Minute

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

func (st *partState) reached(target int64) bool { return st.lastSeen+1 >= target }

func (c *Consumer) summaries(m map[string]*Summary) []Summary {
	var out []Summary
	for _, s := range m {
		out = append(out, *s)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Shard < out[j].Shard })
	return out
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

func joinErrors(errs []error) error {
	if len(errs) == 0 {
		return nil
	}
	code := exitcode.OK
	for _, e := range errs {
		c := exitcode.Of(e)
		// the worst: a permanent failure (1..4) over a retryable one
		if code == exitcode.OK || code == exitcode.Retryable {
			code = c
		}
	}
	return exitcode.Wrap(code, errors.Join(errs...))
}

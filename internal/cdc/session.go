package cdc

import (
	"context"
	"errors"
	"fmt"
	"regexp"
	"sort"
	"sync"
	"time"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/shopsphere/shardflow/internal/exitcode"
	"github.com/shopsphere/shardflow/internal/pause"
)

// session is one Run of a configured Consumer: its group client, the state of every
// partition it was assigned and the summary of every shard. The poll loop and the
// client's rebalance callbacks share states, so both hold mu while they use it.
type session struct {
	c       *Consumer
	bounded bool
	re      *regexp.Regexp
	mappers map[string]*mapper // by table
	targets map[tp]int64       // bounded: the end offsets at the start
	cl      *kgo.Client
	// wctx is where files are landed and offsets committed: it ends ShutdownGrace after
	// Run's context, so a file being landed finishes on SIGTERM rather than failing.
	wctx    context.Context
	wcancel context.CancelFunc

	mu     sync.Mutex
	states map[tp]*partState
	sums   map[string]*Summary
	// pauseCheckAt: when a follow session next looks for shards paused since their
	// partitions were assigned
	pauseCheckAt time.Time
}

// partState is where one partition stands in the session.
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
	// quarantined: the partition stopped at a poison event (failed says so too); it
	// resumes once an operator released it (follow mode rechecks at recheckAt).
	quarantined *Quarantine
	paused      *pause.Pause // the shard is paused by an operator: left at its committed offset
	recheckAt   time.Time
	skips       map[int64]bool // offsets an operator decided to skip; nil until read
	// claimLast: the last offset of the file being cut, when another writer claimed
	// its range (claim.go); -1 when this writer cuts it
	claimLast int64
}

func (st *partState) reached(target int64) bool { return st.lastSeen+1 >= target }

type tp struct {
	topic string
	p     int32
}

// newSession builds the tables' mappers, lists a bounded run's targets and joins the
// group. It returns nil and no error when a bounded run has nothing to consume.
func (c *Consumer) newSession(ctx context.Context, bounded bool) (*session, error) {
	s := &session{c: c, bounded: bounded, re: regexp.MustCompile(c.Pattern()), mappers: map[string]*mapper{},
		states: map[tp]*partState{}, sums: map[string]*Summary{}}
	for _, t := range c.Registry.Tables {
		m, err := c.newMapper(t)
		if err != nil {
			return nil, exitcode.Wrap(exitcode.Usage, err)
		}
		s.mappers[t.Name] = m
	}
	if bounded {
		var err error
		if s.targets, err = c.targets(ctx, s.re); err != nil {
			return nil, err
		}
		if len(s.targets) == 0 {
			c.Log.Info("cdc caught up: nothing to consume", "group", c.Group)
			return nil, nil
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
		kgo.OnPartitionsRevoked(s.drop),
		kgo.OnPartitionsLost(s.drop),
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
	s.cl = cl
	s.wctx, s.wcancel = graceful(ctx, ShutdownGrace)
	return s, nil
}

// close ends the grace context and leaves the group.
func (s *session) close() {
	s.wcancel()
	s.cl.Close()
}

// summary is the summary of shard, made on first use.
func (s *session) summary(shard string) *Summary {
	sum := s.sums[shard]
	if sum == nil {
		sum = &Summary{Shard: shard}
		s.sums[shard] = sum
	}
	return sum
}

// summaries are the shards' summaries, by shard id.
func (s *session) summaries() []Summary {
	var out []Summary
	for _, sum := range s.sums {
		out = append(out, *sum)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Shard < out[j].Shard })
	return out
}

// drop forgets revoked or lost partitions (a rebalance callback): their buffered
// records were not committed, and the next owner reads them.
func (s *session) drop(_ context.Context, _ *kgo.Client, lost map[string][]int32) {
	s.mu.Lock()
	defer s.mu.Unlock()
	for t, ps := range lost {
		for _, p := range ps {
			delete(s.states, tp{t, p})
		}
	}
}

// commit commits next as the group's offset of st's partition.
func (s *session) commit(st *partState, next int64) error {
	var cerr error
	s.cl.CommitOffsetsSync(s.wctx, map[string]map[int32]kgo.EpochOffset{st.topic: {st.p: {Epoch: -1, Offset: next}}},
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

// flush lands st's buffered records as one file and commits past them.
func (s *session) flush(st *partState) error {
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
	res, err := s.c.land(s.wctx, j, s.mappers[st.table])
	var pe *PoisonError
	if errors.As(err, &pe) && pe.Offset > j.First {
		// the records before the poison event land as their own file, cut there: the
		// partition then stops exactly at the event
		for i, r := range st.recs {
			if r.Offset >= pe.Offset {
				st.recs = st.recs[:i]
				break
			}
		}
		if ferr := s.flush(st); ferr != nil {
			return ferr
		}
		return err
	}
	var ce *ClaimedError
	if errors.As(err, &ce) {
		return s.recut(st, ce)
	}
	if err != nil {
		return err
	}
	if s.c.Failpoint != nil {
		if err := s.c.Failpoint("manifest", res.Manifest.DataKey); err != nil {
			return err
		}
	}
	if err := s.commit(st, j.Last+1); err != nil {
		return err
	}
	sum := s.summary(st.shard)
	sum.Files++
	sum.Records += int64(len(st.recs))
	sum.Rows += res.Manifest.Rows
	sum.Unowned += res.Unowned
	s.c.Log.Info("cdc file landed", "shard", st.shard, "table", st.table, "window", fmt.Sprintf("p%d:%d-%d", st.p, j.First, j.Last),
		"rows", res.Manifest.Rows, "unowned", res.Unowned, "duration", time.Since(began).Round(time.Millisecond), "key", res.Manifest.DataKey)
	st.recs = st.recs[:0]
	st.backoff = 0
	st.claimLast = -1
	return nil
}

// recut follows another writer's claim of the file st was cutting (claim.go): a file
// already landed is adopted and committed past; a shorter range lands alone, the
// records after it staying buffered for the next file; a longer one keeps buffering
// until its last offset arrives (a bounded run reads on to it).
func (s *session) recut(st *partState, ce *ClaimedError) error {
	cl := ce.Claim
	last := st.recs[len(st.recs)-1].Offset
	switch {
	case ce.Landed:
		if err := s.commit(st, cl.Last+1); err != nil {
			return err
		}
		s.summary(st.shard).Adopted++
		s.c.Log.Info("cdc file landed by another writer adopted", "shard", st.shard, "table", st.table,
			"window", fmt.Sprintf("p%d:%d-%d", st.p, cl.First, cl.Last), "key", cl.DataKey)
		st.recs = st.recs[:0]
		st.claimLast = -1
		return nil
	case cl.Last < last:
		i := sort.Search(len(st.recs), func(i int) bool { return st.recs[i].Offset > cl.Last })
		rest := append([]*kgo.Record(nil), st.recs[i:]...)
		st.recs = st.recs[:i]
		st.claimLast = cl.Last
		if i == 0 || st.recs[i-1].Offset != cl.Last {
			st.recs = append(st.recs, rest...)
			return exitcode.Errorf(exitcode.Permanent, "%s/%d: file from %d claimed up to offset %d, which this reader does not have (claim %s)",
				st.topic, st.p, cl.First, cl.Last, ClaimKey(st.topic, st.p, cl.First))
		}
		if err := s.flush(st); err != nil {
			st.recs = append(st.recs, rest...)
			return err
		}
		st.recs = append(st.recs, rest...)
		if len(st.recs) > 0 {
			st.firstAt = s.c.Now()
		}
		return nil
	default: // the claimed range ends after the records buffered: read on
		st.claimLast = cl.Last
		if st.target >= 0 && cl.Last+1 > st.target {
			st.target = cl.Last + 1
			s.targets[tp{st.topic, st.p}] = st.target
		}
		return nil
	}
}

// quarantine records the poison event pe in the object store and stops its partition
// there; the records before it were landed and committed (flush).
func (s *session) quarantine(st *partState, pe *PoisonError) error {
	q := &Quarantine{Topic: st.topic, Partition: st.p, Offset: pe.Offset, Shard: st.shard, Table: st.table,
		Reason: pe.Err.Error(), ExitCode: exitcode.Of(pe.Err), At: s.c.Now().UTC(), CodeVersion: s.c.CodeVersion}
	if err := WriteQuarantine(s.wctx, s.c.Store, *q); err != nil {
		return fmt.Errorf("quarantine %s/%d offset %d: %w", st.topic, st.p, pe.Offset, err)
	}
	s.hold(st, q)
	return nil
}

// hold stops st's partition at its quarantine q.
func (s *session) hold(st *partState, q *Quarantine) {
	st.quarantined = q
	st.failed = fmt.Errorf("quarantined at offset %d: %s", q.Offset, q.Reason)
	st.recs = nil
	st.recheckAt = s.c.Now().Add(QuarantineRecheck)
	s.cl.PauseFetchPartitions(map[string][]int32{st.topic: {st.p}})
	sum := s.summary(st.shard)
	sum.Quarantined = append(sum.Quarantined, *q)
	s.c.Log.Error("cdc partition quarantined: a poison event stops it until released (shardctl quarantine)",
		"shard", st.shard, "table", st.table, "topic", st.topic, "window", fmt.Sprintf("p%d:%d", st.p, q.Offset), "err", q.Reason)
}

// pauseShard leaves st's partition at its committed offset while its shard is paused.
func (s *session) pauseShard(st *partState, p *pause.Pause) {
	st.paused = p
	st.failed = p.Err()
	st.recs = nil
	st.recheckAt = s.c.Now().Add(QuarantineRecheck)
	s.cl.PauseFetchPartitions(map[string][]int32{st.topic: {st.p}})
	s.summary(st.shard).Paused = true
	s.c.Log.Info("cdc partition of a paused shard left at its committed offset", "shard", st.shard, "table", st.table,
		"window", fmt.Sprintf("p%d:%d", st.p, st.next), "paused_by", p.By)
}

// fail stops a partition. A poison event quarantines it. In follow mode a retryable failure (store or broker
// unreachable) is retried after a backoff from the committed offset; any other
// failure, and every failure of a bounded run, stops the partition for the run.
func (s *session) fail(st *partState, err error) {
	var pe *PoisonError
	if errors.As(err, &pe) {
		qerr := s.quarantine(st, pe)
		if qerr == nil {
			return
		}
		err = qerr // not recorded: fail (retried from the committed offset in follow mode)
	}
	st.failed = err
	st.recs, st.claimLast = nil, -1
	s.cl.PauseFetchPartitions(map[string][]int32{st.topic: {st.p}})
	if !s.bounded && exitcode.Of(err) == exitcode.Retryable && st.next >= 0 {
		st.backoff = min(max(2*st.backoff, time.Second), MaxRetryBackoff)
		st.retryAt = s.c.Now().Add(st.backoff)
		s.c.Log.Warn("cdc partition paused, will retry", "shard", st.shard, "table", st.table, "window", fmt.Sprintf("p%d:%d-", st.p, st.next),
			"duration", st.backoff, "err", err)
		return
	}
	s.c.Log.Error("cdc partition stopped", "shard", st.shard, "table", st.table, "window", fmt.Sprintf("p%d", st.p), "err", err)
}

// retry resumes the partitions whose backoff has passed: records after the committed
// offset are read again, and a file landed before a lost commit is adopted as on a
// restart.
func (s *session) retry() {
	if now := s.c.Now(); !now.Before(s.pauseCheckAt) {
		s.pauseCheckAt = now.Add(QuarantineRecheck)
		if ps, err := pause.List(s.wctx, s.c.Store); err == nil {
			for _, p := range ps {
				for _, st := range s.states {
					if st.shard == p.Shard && st.failed == nil {
						s.pauseShard(st, &p)
					}
				}
			}
		}
	}
	for _, st := range s.states {
		if st.paused != nil && !s.c.Now().Before(st.recheckAt) {
			st.recheckAt = s.c.Now().Add(QuarantineRecheck)
			if p, err := pause.Get(s.wctx, s.c.Store, st.shard); err == nil && p == nil {
				st.paused, st.skips = nil, nil
				st.retryAt = s.c.Now() // resumed: read again from the committed offset, below
				s.c.Log.Info("cdc shard resumed", "shard", st.shard, "table", st.table, "window", fmt.Sprintf("p%d:%d", st.p, st.next))
			}
		}
		if st.quarantined != nil && !s.c.Now().Before(st.recheckAt) {
			st.recheckAt = s.c.Now().Add(QuarantineRecheck)
			if q, err := getQuarantine(s.wctx, s.c.Store, QuarantineKey(st.topic, st.p)); err == nil && q == nil {
				st.quarantined, st.skips = nil, nil
				st.retryAt = s.c.Now() // released: resume below, from the committed offset
				s.c.Log.Info("cdc quarantine released", "shard", st.shard, "table", st.table, "window", fmt.Sprintf("p%d:%d", st.p, st.next))
			}
		}
		if st.failed == nil || st.quarantined != nil || st.paused != nil || st.retryAt.IsZero() || s.c.Now().Before(st.retryAt) {
			continue
		}
		s.cl.SetOffsets(map[string]map[int32]kgo.EpochOffset{st.topic: {st.p: {Epoch: -1, Offset: st.next}}})
		s.cl.ResumeFetchPartitions(map[string][]int32{st.topic: {st.p}})
		st.failed, st.retryAt, st.checked, st.skipTo, st.resumed = nil, time.Time{}, false, -1, true
		s.c.Log.Info("cdc partition resumed", "shard", st.shard, "table", st.table, "window", fmt.Sprintf("p%d:%d-", st.p, st.next))
	}
}

// state is the state of a partition, made on its first records. A topic of a shard
// that is not in shards.yaml is paused and reported, never landed.
func (s *session) state(topic string, p int32) *partState {
	k := tp{topic, p}
	if st := s.states[k]; st != nil {
		return st
	}
	st := &partState{topic: topic, p: p, skipTo: -1, target: -1, lastSeen: -1, next: -1, claimLast: -1}
	if m := s.re.FindStringSubmatch(topic); m != nil {
		st.shard, st.table = m[1], m[2]
	}
	if s.bounded {
		t, ok := s.targets[k]
		if !ok {
			t = 0 // appeared after the start: the next run takes it
		}
		st.target = t
	}
	if _, ok := s.c.Registry.Shard(st.shard); !ok {
		st.unknown = true
		st.failed = fmt.Errorf("topic %s: shard %q is not in shards.yaml (add it, or delete its connector)", topic, st.shard)
		s.cl.PauseFetchPartitions(map[string][]int32{topic: {p}})
		s.c.Log.Warn("cdc topic of an unknown shard skipped", "shard", st.shard, "table", st.table)
	}
	s.states[k] = st
	return st
}

// handle takes one record of st's partition: the first after an assignment or a seek
// adopts a file an earlier run landed from there; a record that starts a new offset
// block lands the records buffered before it.
func (s *session) handle(st *partState, r *kgo.Record) error {
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
		st.next = r.Offset // the first record after an assignment or a seek is at the committed offset
		if st.skips == nil {
			p, err := pause.Get(s.wctx, s.c.Store, st.shard)
			if err != nil {
				return err
			}
			if p != nil {
				s.pauseShard(st, p)
				return nil
			}
			q, err := getQuarantine(s.wctx, s.c.Store, QuarantineKey(st.topic, st.p))
			if err != nil {
				return err
			}
			if q != nil {
				s.hold(st, q)
				return nil
			}
			if st.skips, err = skippedOffsets(s.wctx, s.c.Store, st.topic, st.p); err != nil {
				st.skips = nil
				return err
			}
		}
		if st.skips[r.Offset] {
			// skipped by an operator's decision: commit past it, and look for a file an
			// earlier run landed from the record after it
			return s.skip(st, r)
		}
		st.checked = true
		last, err := s.c.recoverFile(s.wctx, st.topic, st.table, st.shard, st.p, r.Offset, dayOf(r.Value, r.Timestamp))
		if err != nil {
			return err
		}
		if last >= 0 {
			st.skipTo = last
			if err := s.commit(st, last+1); err != nil {
				return err
			}
			s.summary(st.shard).Adopted++
			s.c.Log.Info("cdc file landed by an earlier run adopted", "shard", st.shard, "table", st.table,
				"window", fmt.Sprintf("p%d:%d-%d", st.p, r.Offset, last))
		}
	}
	if r.Offset <= st.skipTo {
		return nil
	}
	if st.skips[r.Offset] {
		return s.skip(st, r)
	}
	// A file ends at its claim's last offset when another writer claimed it, else at
	// the end of its offset block.
	if len(st.recs) > 0 && (st.claimLast >= 0 && r.Offset > st.claimLast ||
		st.claimLast < 0 && r.Offset/s.c.FileRecords != st.recs[0].Offset/s.c.FileRecords) {
		if err := s.flush(st); err != nil {
			return err
		}
	}
	if len(st.recs) == 0 {
		st.firstAt = s.c.Now()
	}
	st.recs = append(st.recs, r)
	if st.claimLast >= 0 && r.Offset >= st.claimLast {
		return s.flush(st)
	}
	return nil
}

// skip drops r, an event an operator decided to skip (Release). When everything before
// it is committed, the commit moves past it, so a later run does not read it again.
func (s *session) skip(st *partState, r *kgo.Record) error {
	s.summary(st.shard).SkippedByDecision++
	s.c.Log.Warn("cdc event skipped by an operator's decision (shardctl quarantine skipped)", "shard", st.shard, "table", st.table,
		"window", fmt.Sprintf("p%d:%d", st.p, r.Offset))
	if len(st.recs) == 0 && st.next == r.Offset {
		return s.commit(st, r.Offset+1)
	}
	return nil
}

// done reports whether a bounded run has landed every target partition up to its
// target (or given up on it); a follow run is never done.
func (s *session) done() bool {
	if !s.bounded {
		return false
	}
	for k, t := range s.targets {
		st := s.states[k]
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

// loop polls until the session is done or ctx ends. The error is a bounded run
// stopped before it caught up, or a closed client; a partition's failure is kept in
// its state.
func (s *session) loop(ctx context.Context) error {
	wait := time.Second
	if s.c.FlushInterval < wait {
		wait = s.c.FlushInterval
	}
	for {
		s.mu.Lock()
		finished := s.done()
		s.mu.Unlock()
		if finished {
			return nil
		}
		pctx, cancel := context.WithTimeout(ctx, wait)
		fs := s.cl.PollRecords(pctx, 10000)
		cancel()
		if ctx.Err() != nil {
			s.cl.AllowRebalance()
			if s.bounded {
				return exitcode.Wrap(exitcode.Retryable, fmt.Errorf("cdc consumer: stopped before caught up: %w", ctx.Err()))
			}
			return nil // follow mode ends here; buffered records are not committed and are read again
		}
		var fatal error
		fs.EachError(func(t string, p int32, err error) {
			if errors.Is(err, context.DeadlineExceeded) || errors.Is(err, context.Canceled) {
				return
			}
			s.c.Log.Warn("cdc fetch error", "window", fmt.Sprintf("%s/%d", t, p), "err", err)
			if errors.Is(err, kgo.ErrClientClosed) {
				fatal = err
			}
		})
		if fatal != nil {
			return exitcode.Wrap(exitcode.Retryable, fatal)
		}
		s.mu.Lock()
		fs.EachPartition(s.take)
		s.flushDue()
		if !s.bounded {
			s.retry()
		}
		s.mu.Unlock()
		s.cl.AllowRebalance()
	}
}

// take handles the records of one fetched partition.
func (s *session) take(fp kgo.FetchTopicPartition) {
	if len(fp.Records) == 0 {
		return // errors were handled by loop (a poll that timed out has a fake partition -1)
	}
	st := s.state(fp.Topic, fp.Partition)
	for _, r := range fp.Records {
		if st.failed != nil {
			return
		}
		if err := s.handle(st, r); err != nil {
			s.fail(st, err)
		}
		st.lastSeen = r.Offset
	}
}

// flushDue lands the partial files that are due: a bounded partition's last records
// before its target, a follow partition's after FlushInterval.
func (s *session) flushDue() {
	for _, st := range s.states {
		if st.failed != nil || len(st.recs) == 0 {
			continue
		}
		last := st.recs[len(st.recs)-1].Offset
		if st.claimLast >= 0 && last < st.claimLast {
			continue // another writer's range: it ends at its claim
		}
		if (st.target >= 0 && last+1 >= st.target) || (st.target < 0 && s.c.Now().Sub(st.firstAt) >= s.c.FlushInterval) {
			if err := s.flush(st); err != nil {
				s.fail(st, err)
			}
		}
	}
}

// finish reports a partition still failed at the end in its shard's summary and
// returns the summaries with the shards' errors joined.
func (s *session) finish() ([]Summary, error) {
	keys := make([]tp, 0, len(s.states))
	for k := range s.states {
		keys = append(keys, k)
	}
	sort.Slice(keys, func(i, j int) bool {
		return keys[i].topic < keys[j].topic || (keys[i].topic == keys[j].topic && keys[i].p < keys[j].p)
	})
	for _, k := range keys {
		if st := s.states[k]; st.failed != nil && !st.unknown && st.quarantined == nil && st.paused == nil {
			if sum := s.summary(st.shard); sum.Err == nil {
				sum.Err = st.failed
			}
		}
	}
	out := s.summaries()
	var errs []error
	for _, sum := range out {
		if sum.Err != nil {
			errs = append(errs, fmt.Errorf("shard %s: %w", sum.Shard, sum.Err))
		}
	}
	return out, exitcode.Join(errs...)
}

package cdc

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"sort"
	"strings"
	"sync"
	"time"

	"github.com/shopsphere/shardflow/internal/exitcode"
	"github.com/shopsphere/shardflow/internal/landing"
	"github.com/shopsphere/shardflow/internal/objstore"
	"github.com/shopsphere/shardflow/internal/registry"
	"github.com/shopsphere/shardflow/internal/tokenize"
)

// Sentinel errors; each is wrapped with the shard, table and offsets it concerns.
var (
	// ErrDrift: a change event lacks a declared column that is not rolling out, or
	// carries one of another type (exit 4).
	ErrDrift = errors.New("change event columns differ from shards.yaml")
	// ErrDroppedColumn: an event carries a column whose policy is drop; the connector's
	// column.include.list is wrong. The event is a poison event (quarantine.go): it never
	// lands (exit 3 in its quarantine).
	ErrDroppedColumn = errors.New("change event carries a drop-policy column")
	// ErrWrongBucket: a row's bucket is not registry.Bucket(customer_id) (exit 3;
	// landing.ErrWrongBucket, the same error on both paths).
	ErrWrongBucket = landing.ErrWrongBucket
)

// mapper turns the events of one table into source rows for its landing.Pipeline. It
// is shared by the partitions' goroutines.
type mapper struct {
	pipe   *landing.Pipeline
	landed []registry.Column
	source map[string]registry.Column // every shards.yaml column
	log    *slog.Logger
	warned sync.Map // "shard.column" of the undeclared columns already reported
}

func (c *Consumer) newMapper(t registry.Table) (*mapper, error) {
	pipe, err := landing.NewPipeline(c.Registry, t, tokenize.Verifier{}, c.NewWriter)
	if err != nil {
		return nil, err
	}
	m := &mapper{pipe: pipe, landed: t.Landed(), source: map[string]registry.Column{}, log: c.Log.With("table", t.Name)}
	for _, col := range t.Columns {
		m.source[col.Name] = col
	}
	return m, nil
}

// fileJob is one file to land: the records [first, last] of one partition.
type fileJob struct {
	Topic     string
	Shard     string
	Table     string
	Partition int32
	First     int64
	Last      int64
	Values    [][]byte // record values in offset order (nil for a tombstone)
	Offsets   []int64
	FirstTime time.Time // the first record's Kafka timestamp
}

// landed is what landing a file produced.
type landed struct {
	Manifest *landing.Manifest
	Unowned  int64
	Skipped  int64 // tombstones
}

// built is a file before it is stored: its Parquet data, its manifest (without data
// key, size and sha) and the commit day of its first record (the key's dt=).
type built struct {
	landed
	Data *bytes.Buffer
	Day  time.Time
}

func (j *fileJob) String() string {
	return fmt.Sprintf("shard %s table %s partition %d offsets %d-%d", j.Shard, j.Table, j.Partition, j.First, j.Last)
}

// build decodes the job's events and lands their rows through the table's pipeline
// into a buffer.
func (c *Consumer) build(j *fileJob, m *mapper, own landing.Ownership, extractedAt time.Time) (*built, error) {
	b := &built{Data: &bytes.Buffer{}}
	f, err := m.pipe.Open(b.Data, landing.Lineage{Shard: j.Shard, Source: landing.CDC}, own)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", j, err)
	}
	row := make([]any, len(m.landed))
	var commitLast time.Time
	undeclared := map[string]bool{} // fields of the file's events shards.yaml does not declare
	absent := map[string]bool{}     // the rows' _absent_columns values
	for i, v := range j.Values {
		ev, err := DecodeEvent(v)
		if errors.Is(err, ErrTombstone) {
			b.Skipped++
			continue
		}
		var missing string
		if err == nil {
			missing, err = m.row(ev, row, undeclared)
		}
		if err == nil {
			err = f.Add(row, landing.Change{Op: ev.Op, CommitTS: ev.CommitTS, LSN: ev.LSN, TxID: ev.TxID, Absent: missing})
		}
		if missing != "" {
			absent[missing] = true
		}
		if err != nil && poison(err) {
			return nil, &PoisonError{Topic: j.Topic, Partition: j.Partition, Offset: j.Offsets[i], Shard: j.Shard, Table: j.Table, Err: err}
		}
		if err != nil {
			return nil, fmt.Errorf("%s: offset %d: %w", j, j.Offsets[i], err)
		}
		if ev.CommitTS.After(commitLast) {
			commitLast = ev.CommitTS
		}
	}
	if err := f.Close(); err != nil {
		return nil, fmt.Errorf("%s: %w", j, err)
	}
	m.report(j.Shard, undeclared)
	b.Unowned = f.Unowned()
	b.Day = dayOf(j.Values[0], j.FirstTime)
	epoch, ok := f.Epoch()
	if !ok {
		epoch = c.Registry.EpochAt(b.Day)
	}
	p, first, last := j.Partition, j.First, j.Last
	sum := f.Checksum()
	b.Manifest = &landing.Manifest{
		Format: landing.FormatVersion, Table: j.Table, Shard: j.Shard, Source: landing.CDC,
		Topic: j.Topic, Partition: &p, OffsetFirst: &first, OffsetLast: &last,
		RegistryEpoch: epoch, Rows: sum.Rows(), Checksum: sum.String(),
		Columns: m.pipe.Columns(), AbsentColumns: m.absentColumns(absent), TokenizerKeyID: strings.Join(f.KeyIDs(), ","), ExtractedAt: extractedAt, CodeVersion: c.CodeVersion,
	}
	if !commitLast.IsZero() {
		b.Manifest.CommitLast = &commitLast
	}
	return b, nil
}

// row writes ev's values of the landed columns into dst, in order, and returns the
// row's _absent_columns. Each event is mapped by its own fields, so a schema change in
// the middle of a topic (or of one file) changes nothing for the events around it
// (docs/runbooks/schema-change.md):
//
//   - a field shards.yaml does not declare is never landed: its name is added to
//     undeclared (the value is never looked at; the connector's column.include.list
//     keeps such columns out of Kafka, so one here means its config is stale);
//   - a field whose policy is drop is a poison event (exit 3);
//   - a rolling-out column (adding: true) missing from the event lands NULL and is
//     named in the returned list, in shards.yaml order;
//   - any other landed column missing, or a value of another type, stops the file
//     (exit 4): a dropped, renamed or retyped column.
func (m *mapper) row(ev *Event, dst []any, undeclared map[string]bool) (string, error) {
	src := ev.Row()
	for name := range src {
		col, ok := m.source[name]
		if !ok {
			undeclared[name] = true
			continue
		}
		if col.PCI == registry.PCIDrop {
			return "", exitcode.Wrap(exitcode.CheckFail, fmt.Errorf("%w: %s (the connector's column.include.list must leave it out: shardctl connectors apply)", ErrDroppedColumn, name))
		}
	}
	var absent string
	for k, col := range m.landed {
		raw, ok := src[col.Name]
		if !ok && col.Adding {
			dst[k] = nil
			if absent != "" {
				absent += ","
			}
			absent += col.Name
			continue
		}
		if !ok {
			return "", exitcode.Wrap(exitcode.Drift, fmt.Errorf("%w: column %s is missing from the event (a declared column dropped or renamed on the shard is refused; one being added is marked adding: true in shards.yaml)", ErrDrift, col.Name))
		}
		val, err := value(raw, col.Type)
		if err != nil {
			return "", exitcode.Wrap(exitcode.Drift, fmt.Errorf("column %s (%s): %w", col.Name, col.Type, err))
		}
		dst[k] = val
	}
	return absent, nil
}

// report warns, once per process for each shard and column, of the undeclared columns
// a file's events carried: they were not landed.
func (m *mapper) report(shard string, undeclared map[string]bool) {
	names := make([]string, 0, len(undeclared))
	for n := range undeclared {
		names = append(names, n)
	}
	sort.Strings(names)
	for _, n := range names {
		if _, seen := m.warned.LoadOrStore(shard+"."+n, true); !seen {
			m.log.Warn("undeclared column in the shard's change events: not landed until shards.yaml declares it with its pci policy; the connector's column.include.list is stale (shardctl connectors apply)",
				"shard", shard, "column", n)
		}
	}
}

// absentColumns are the rolling-out columns named in any of a file's rows' absent
// lists, in shards.yaml order.
func (m *mapper) absentColumns(lists map[string]bool) []string {
	names := map[string]bool{}
	for l := range lists {
		for _, n := range strings.Split(l, ",") {
			names[n] = true
		}
	}
	var out []string
	for _, c := range m.landed {
		if names[c.Name] {
			out = append(out, c.Name)
		}
	}
	return out
}

// ownership is how a shard's changes are judged: the registry, or, while the shard is in
// a pending move, its view with the shard's own fence rows (Fences).
func (c *Consumer) ownership(ctx context.Context, shard string) (landing.Ownership, error) {
	for _, m := range c.Registry.Pending() {
		if m.From != shard && m.To != shard {
			continue
		}
		if c.Fences == nil {
			return nil, exitcode.Errorf(exitcode.Usage, "shard %s is in pending move %d: judging its changes needs the shard's fences (its extract DSN)", shard, m.Epoch)
		}
		v, err := c.Fences.View(ctx, shard)
		if err != nil {
			return nil, exitcode.Wrap(exitcode.Retryable, err)
		}
		return v, nil
	}
	return c.Registry, nil
}

// dayOf is the time a file is dated by (the dt= of its key): the commit time of its
// first record, or that record's Kafka timestamp when it is not a change event. A
// record read again gives the same day, so a retry computes the same key.
func dayOf(value []byte, ts time.Time) time.Time {
	if ev, err := DecodeEvent(value); err == nil {
		return ev.CommitTS
	}
	return ts.UTC()
}

// land writes the data file, then its manifest. The file counts as landed only once
// the manifest is stored.
func (c *Consumer) land(ctx context.Context, j *fileJob, m *mapper) (*landed, error) {
	extractedAt := c.Now().UTC().Truncate(time.Microsecond)
	// The shard's view is read after the file's records were read from Kafka: every
	// marker those changes are judged by committed before them (decisions/0017).
	own, err := c.ownership(ctx, j.Shard)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", j, err)
	}
	b, err := c.build(j, m, own, extractedAt)
	if err != nil {
		return nil, err
	}
	data, man := b.Data, b.Manifest
	key := landing.CDCKey(j.Table, j.Shard, j.Partition, j.First, j.Last, b.Day)
	// the claim decides the range (claim.go): another writer's range is re-cut by the
	// caller, and a file another writer landed is adopted; one it claimed and did not
	// land (it died, or is still writing) is written here, with the same bytes
	cl, created, err := c.claim(ctx, j, key)
	if err != nil {
		return nil, err
	}
	if cl.Last != j.Last || cl.DataKey != key {
		return nil, &ClaimedError{Claim: cl}
	}
	if !created {
		done, err := c.claimLanded(ctx, cl)
		if err != nil {
			return nil, fmt.Errorf("%s: %w", j, err)
		}
		if done {
			return nil, &ClaimedError{Claim: cl, Landed: true}
		}
	}
	sha := sha256.Sum256(data.Bytes())
	man.DataKey = key
	man.DataBytes = int64(data.Len())
	man.DataSHA256 = hex.EncodeToString(sha[:])
	body, err := man.Marshal()
	if err != nil {
		return nil, fmt.Errorf("%s: manifest: %w", j, err)
	}
	if err := c.Store.Put(ctx, key, data); err != nil {
		return nil, objstore.Classify(fmt.Errorf("%s: put %s: %w", j, key, err))
	}
	if c.Failpoint != nil {
		if err := c.Failpoint("data", key); err != nil {
			return nil, err
		}
	}
	if err := c.Store.Put(ctx, landing.ManifestKey(key), bytes.NewReader(body)); err != nil {
		return nil, objstore.Classify(fmt.Errorf("%s: put %s: %w", j, landing.ManifestKey(key), err))
	}
	return &b.landed, nil
}

// recover looks for a file of partition p that starts at offset first and was landed
// by an earlier run whose offset commit was lost (it died between the manifest and the
// commit). It returns that file's last offset, or -1. A data file without a manifest
// starting there is an unfinished attempt and is deleted.
func (c *Consumer) recoverFile(ctx context.Context, topic, table, shard string, p int32, first int64, day time.Time) (int64, error) {
	// The key's dt= is the commit day of the first record; a record read again is the
	// same record, so the same day.
	probe := landing.CDCKey(table, shard, p, first, 0, day)
	prefix := probe[:len(probe)-len(fmt.Sprintf("%020d", int64(0)))-len(landing.DataSuffix)]
	keys, err := c.Store.List(ctx, prefix)
	if err != nil {
		return -1, objstore.Classify(fmt.Errorf("list %s: %w", prefix, err))
	}
	last := int64(-1)
	var orphans []string
	manifests := map[string]bool{}
	for _, k := range keys {
		if len(k) > len(landing.ManifestSuffix) && k[len(k)-len(landing.ManifestSuffix):] == landing.ManifestSuffix {
			manifests[landing.DataKeyOf(k)] = true
		}
	}
	sort.Strings(keys)
	for _, k := range keys {
		switch {
		case manifests[k]:
			rc, err := c.Store.Get(ctx, landing.ManifestKey(k))
			if err != nil {
				return -1, objstore.Classify(fmt.Errorf("get manifest of %s: %w", k, err))
			}
			b, err := io.ReadAll(rc)
			rc.Close()
			if err != nil {
				return -1, objstore.Classify(fmt.Errorf("get manifest of %s: %w", k, err))
			}
			man, err := landing.ParseManifest(b)
			if err != nil || man.OffsetLast == nil {
				return -1, fmt.Errorf("manifest of %s: %v", k, err)
			}
			if *man.OffsetLast > last {
				last = *man.OffsetLast
			}
		case len(k) > len(landing.DataSuffix) && k[len(k)-len(landing.DataSuffix):] == landing.DataSuffix:
			orphans = append(orphans, k)
		}
	}
	// A data file of the claimed range is not an orphan: its writer (another replica)
	// may be about to store its manifest, and this run writes the same bytes anyway.
	cl, err := c.getClaim(ctx, topic, p, first)
	if err != nil {
		return -1, err
	}
	for _, k := range orphans {
		if cl != nil && cl.DataKey == k {
			continue
		}
		if err := c.Store.Delete(ctx, k); err != nil {
			return -1, objstore.Classify(fmt.Errorf("delete unfinished %s: %w", k, err))
		}
	}
	return last, nil
}

package cdc

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"sort"
	"time"

	"github.com/shopsphere/shardflow/internal/exitcode"
	"github.com/shopsphere/shardflow/internal/landing"
	"github.com/shopsphere/shardflow/internal/objstore"
	"github.com/shopsphere/shardflow/internal/registry"
)

// Store is the part of the object store the consumer uses. Keys are relative to the
// landing root (docs/contracts.md §5).
//
// Put stores everything read from r under key, replacing what was there; the object
// becomes visible only when r reaches io.EOF, and a failed Put leaves the previous
// object (or its absence). Get of an absent key returns an error wrapping
// fs.ErrNotExist. List returns the keys under prefix, sorted. Delete succeeds when the
// key is absent.
type Store interface {
	Put(ctx context.Context, key string, r io.Reader) error
	Get(ctx context.Context, key string) (io.ReadCloser, error)
	List(ctx context.Context, prefix string) ([]string, error)
	Delete(ctx context.Context, key string) error
}

// Tokenizer turns a PCI column's value into its landed form (docs/contracts.md §4):
// the same function as the batch path, so batch and CDC give the same token for the
// same value. It is called only for token, last4 and bin columns, never with NULL, and
// its errors never contain the value.
type Tokenizer interface {
	Apply(c registry.Column, value string) (string, error)
	KeyID() string
}

// FileWriter writes landed rows into one Parquet file: Write takes one row in the order
// of the columns it was opened with (string, int64, int32, bool, time.Time or nil) and
// keeps no reference to it; Close writes the footer.
type FileWriter interface {
	Write(row []any) error
	Close() error
}

// NewFileWriter opens a FileWriter over w for cols.
type NewFileWriter func(w io.Writer, cols []landing.Column) (FileWriter, error)

// Sentinel errors; each is wrapped with the shard, table and offsets it concerns.
var (
	// ErrDrift: a change event's columns differ from shards.yaml (exit 4).
	ErrDrift = errors.New("change event columns differ from shards.yaml")
	// ErrDroppedColumn: an event carries a column whose policy is drop; the connector's
	// column.exclude.list is wrong. Nothing of the file lands (exit 3).
	ErrDroppedColumn = errors.New("change event carries a drop-policy column")
	// ErrWrongBucket: a row's bucket is not registry.Bucket(customer_id) (exit 3).
	ErrWrongBucket = errors.New("bucket does not match customer_id")
)

// mapper turns the events of one table into landed rows.
type mapper struct {
	t       registry.Table
	cols    []landing.Column // landed columns + lineage
	landed  []registry.Column
	source  map[string]registry.Column // every shards.yaml column
	keyIdx  []int
	verIdx  int
	custIdx int
	buckIdx int
	wmIdx   int
}

func newMapper(t registry.Table) (*mapper, error) {
	m := &mapper{t: t, cols: landing.Columns(t), landed: t.Landed(), source: map[string]registry.Column{},
		verIdx: -1, custIdx: -1, buckIdx: -1, wmIdx: -1}
	for _, c := range t.Columns {
		m.source[c.Name] = c
	}
	idx := map[string]int{}
	for i, c := range m.landed {
		idx[c.Name] = i
	}
	for _, k := range t.PrimaryKey {
		i, ok := idx[k]
		if !ok {
			return nil, fmt.Errorf("table %s: key column %s is not landed", t.Name, k)
		}
		m.keyIdx = append(m.keyIdx, i)
	}
	var ok bool
	if m.verIdx, ok = idx[t.Version]; !ok {
		return nil, fmt.Errorf("table %s: version column %s is not landed", t.Name, t.Version)
	}
	if m.wmIdx, ok = idx[t.Watermark]; !ok {
		return nil, fmt.Errorf("table %s: watermark column %s is not landed", t.Name, t.Watermark)
	}
	if m.custIdx, ok = idx["customer_id"]; !ok {
		return nil, fmt.Errorf("table %s: customer_id is not landed", t.Name)
	}
	if m.buckIdx, ok = idx["bucket"]; !ok {
		return nil, fmt.Errorf("table %s: bucket is not landed", t.Name)
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

// fileSpec is the deterministic part of a file: its data key and manifest fields.
func (j *fileJob) String() string {
	return fmt.Sprintf("shard %s table %s partition %d offsets %d-%d", j.Shard, j.Table, j.Partition, j.First, j.Last)
}

// build decodes, filters, tokenizes and writes the job's rows as Parquet into a buffer.
// It returns the data, the manifest (without data key/size/sha) and the commit day of
// the first record (the key's dt=).
func (c *Consumer) build(j *fileJob, m *mapper, extractedAt time.Time) (*bytes.Buffer, *landing.Manifest, *landed, time.Time, error) {
	var buf bytes.Buffer
	fw, err := c.NewWriter(&buf, m.cols)
	if err != nil {
		return nil, nil, nil, time.Time{}, fmt.Errorf("%s: open parquet writer: %w", j, err)
	}
	nl := len(m.landed)
	row := make([]any, len(m.cols))
	keyParts := make([]string, len(m.keyIdx))
	var sum landing.Checksum
	res := &landed{}
	var day time.Time
	epoch := -1
	for i, v := range j.Values {
		ev, err := DecodeEvent(v)
		if errors.Is(err, ErrTombstone) {
			res.Skipped++
			continue
		}
		if err != nil {
			return nil, nil, nil, time.Time{}, fmt.Errorf("%s: offset %d: %w", j, j.Offsets[i], err)
		}
		src := ev.Row()
		for name := range src {
			col, ok := m.source[name]
			if !ok {
				return nil, nil, nil, time.Time{}, exitcode.Wrap(exitcode.Drift, fmt.Errorf("%s: offset %d: %w: column %s is not in shards.yaml", j, j.Offsets[i], ErrDrift, name))
			}
			if col.PCI == registry.PCIDrop {
				return nil, nil, nil, time.Time{}, exitcode.Wrap(exitcode.CheckFail, fmt.Errorf("%s: offset %d: %w: %s (add it to the connector's column.exclude.list: shardctl connectors apply)", j, j.Offsets[i], ErrDroppedColumn, name))
			}
		}
		for k, col := range m.landed {
			raw, ok := src[col.Name]
			if !ok {
				return nil, nil, nil, time.Time{}, exitcode.Wrap(exitcode.Drift, fmt.Errorf("%s: offset %d: %w: column %s is missing from the event", j, j.Offsets[i], ErrDrift, col.Name))
			}
			val, err := value(raw, col.Type)
			if err != nil {
				return nil, nil, nil, time.Time{}, exitcode.Wrap(exitcode.Drift, fmt.Errorf("%s: offset %d: column %s (%s): %w", j, j.Offsets[i], col.Name, col.Type, err))
			}
			if val != nil && col.PCI != "" && col.PCI != registry.PCIKeep {
				tok, err := c.Tokenizer.Apply(col, val.(string))
				if err != nil {
					return nil, nil, nil, time.Time{}, fmt.Errorf("%s: offset %d: tokenize column %s: %w", j, j.Offsets[i], col.Name, err)
				}
				val = tok
			}
			row[k] = val
		}
		for k, ki := range m.keyIdx {
			keyParts[k] = landing.KeyValueText(row[ki])
		}
		cust, _ := row[m.custIdx].(int64)
		b, _ := row[m.buckIdx].(int32)
		if want := c.Registry.Bucket(cust); int(b) != want {
			return nil, nil, nil, time.Time{}, exitcode.Wrap(exitcode.CheckFail, fmt.Errorf("%s: offset %d: %w: key %s customer_id %d has bucket %d, registry.Bucket gives %d",
				j, j.Offsets[i], ErrWrongBucket, landing.KeyText(keyParts...), cust, b, want))
		}
		// A change counts only from the shard that owned its bucket at the change's
		// instant: updated_at for rows written, the commit time for hard deletes.
		instant := ev.CommitTS
		if ev.Op != "d" {
			if wm, ok := row[m.wmIdx].(time.Time); ok {
				instant = wm
			}
		}
		if !c.Registry.Owns(j.Shard, int(b), instant) {
			res.Unowned++
			continue
		}
		ep := c.Registry.EpochAt(instant)
		if ep > epoch {
			epoch = ep
		}
		row[nl+0] = j.Shard
		row[nl+1] = string(landing.CDC)
		row[nl+2] = ev.Op
		row[nl+3] = int32(ep)
		row[nl+4] = nil
		row[nl+5] = nil
		row[nl+6] = extractedAt
		row[nl+7] = ev.CommitTS
		row[nl+8] = ev.LSN
		row[nl+9] = ev.TxID
		ver, _ := row[m.verIdx].(int64)
		sum.Add(landing.KeyText(keyParts...), ver)
		if err := fw.Write(row); err != nil {
			return nil, nil, nil, time.Time{}, fmt.Errorf("%s: write row: %w", j, err)
		}
	}
	if err := fw.Close(); err != nil {
		return nil, nil, nil, time.Time{}, fmt.Errorf("%s: close parquet writer: %w", j, err)
	}
	day = dayOf(j.Values[0], j.FirstTime)
	if epoch < 0 {
		epoch = c.Registry.EpochAt(day)
	}
	p, f, l := j.Partition, j.First, j.Last
	man := &landing.Manifest{
		Format: landing.FormatVersion, Table: j.Table, Shard: j.Shard, Source: landing.CDC,
		Topic: j.Topic, Partition: &p, OffsetFirst: &f, OffsetLast: &l,
		RegistryEpoch: epoch, Rows: sum.Rows(), Checksum: sum.String(),
		Columns: m.cols, TokenizerKeyID: c.Tokenizer.KeyID(), ExtractedAt: extractedAt, CodeVersion: c.CodeVersion,
	}
	return &buf, man, res, day, nil
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
	extractedAt := c.now().UTC().Truncate(time.Microsecond)
	data, man, res, day, err := c.build(j, m, extractedAt)
	if err != nil {
		return nil, err
	}
	key := landing.CDCKey(j.Table, j.Shard, j.Partition, j.First, j.Last, day)
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
	res.Manifest = man
	return res, nil
}

// recover looks for a file of partition p that starts at offset first and was landed
// by an earlier run whose offset commit was lost (it died between the manifest and the
// commit). It returns that file's last offset, or -1. A data file without a manifest
// starting there is an unfinished attempt and is deleted.
func (c *Consumer) recoverFile(ctx context.Context, table, shard string, p int32, first int64, day time.Time) (int64, error) {
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
	for _, k := range orphans {
		if err := c.Store.Delete(ctx, k); err != nil {
			return -1, objstore.Classify(fmt.Errorf("delete unfinished %s: %w", k, err))
		}
	}
	return last, nil
}

package landing

import (
	"errors"
	"fmt"
	"io"
	"sort"
	"time"

	"github.com/shopsphere/shardflow/internal/exitcode"
	"github.com/shopsphere/shardflow/internal/registry"
	"github.com/shopsphere/shardflow/internal/tokenize"
)

// ErrWrongBucket: a row's bucket column is not registry.Bucket(customer_id): the
// application wrote a wrong bucket, and ownership cannot be decided for it (exit 3).
var ErrWrongBucket = errors.New("row has a wrong bucket")

// Ownership decides whether a shard's change counts (invariant 5): only the shard that
// owned the change's bucket at the change's instant may land it.
//
// Owned reports whether shard owned bucket at instant at (ok) and the registry epoch
// of that decision, recorded as the row's _registry_epoch (meaningful only when ok).
// It is a pure function of its arguments: the same question gets the same answer on
// every run, so a re-landed file carries the same rows. *registry.Registry answers it
// from shards.yaml's moves (Owns and EpochAt).
type Ownership interface {
	Owned(shard string, bucket int, at time.Time) (epoch int, ok bool)
}

var (
	_ Ownership = (*registry.Registry)(nil)
	_ Ownership = (*registry.ShardView)(nil)
)

// Column names every source table has (docs/contracts.md §1).
const (
	ColCustomerID = registry.CustomerColumn
	ColBucket     = registry.BucketColumn
)

// Pipeline turns source rows of one table into landed rows: the one place
// where both paths, batch (extract) and CDC (the consumer), decide what lands. A
// source row is the table's landed column values in Columns order (policy != drop),
// as FileWriter takes them; Pipeline never changes the caller's row.
type Pipeline struct {
	// Ownership decides which changes a shard may land when Open is given none;
	// NewPipeline sets the registry's.
	Ownership Ownership

	buckets   int // routing.buckets
	tokenizer Tokenizer
	newWriter NewFileWriter
	cols      []Column          // landed columns, then lineage
	landed    []registry.Column // the source row's columns
	keyIdx    []int             // positions in landed of the primary key, watermark, version, customer_id and bucket
	wmIdx     int
	verIdx    int
	custIdx   int
	buckIdx   int
}

// Required returns the positions among t's landed columns of the columns every landed
// table needs: its primary key, then watermark, version, customer_id and bucket; or an
// error naming the first of them that is missing or not landed.
func Required(t registry.Table) ([]int, error) {
	pos := map[string]int{}
	for i, c := range t.Landed() {
		pos[c.Name] = i
	}
	var out []int
	for _, name := range append(append([]string(nil), t.PrimaryKey...), t.Watermark, t.Version, ColCustomerID, ColBucket) {
		i, ok := pos[name]
		if !ok {
			return nil, fmt.Errorf("table %s: column %s is required and must be landed", t.Name, name)
		}
		out = append(out, i)
	}
	return out, nil
}

// NewPipeline is the pipeline of table t, with reg's buckets and ownership.
func NewPipeline(reg *registry.Registry, t registry.Table, tok Tokenizer, nw NewFileWriter) (*Pipeline, error) {
	p := &Pipeline{Ownership: reg, buckets: reg.Routing.Buckets, tokenizer: tok, newWriter: nw,
		cols: Columns(t), landed: t.Landed()}
	pos, err := Required(t)
	if err != nil {
		return nil, err
	}
	n := len(t.PrimaryKey)
	p.keyIdx = pos[:n]
	p.wmIdx, p.verIdx, p.custIdx, p.buckIdx = pos[n], pos[n+1], pos[n+2], pos[n+3]
	return p, nil
}

// Columns are the columns of the pipeline's files: the landed columns, then lineage.
func (p *Pipeline) Columns() []Column { return p.cols }

// File is one landed file being written by a Pipeline. It is not safe for concurrent use.
type File struct {
	p        *Pipeline
	own      Ownership
	fw       FileWriter
	lineage  Lineage
	row      []any // the row being landed; its lineage part keeps the per-file fields
	keyParts []string
	sum      Checksum
	unowned  int64
	epoch    int             // the newest _registry_epoch written, -1 before the first row
	keyIDs   map[string]bool // the key ids of the tokens written
}

// Open starts a file over w. lineage holds the file's fields (the shard whose rows it
// lands, the source, the window, extracted_at); Add sets the per-row ones. own judges
// the file's changes: the shard's view with its fences (registry.ShardView) during a
// pending move; nil means the pipeline's Ownership.
func (p *Pipeline) Open(w io.Writer, lineage Lineage, own Ownership) (*File, error) {
	fw, err := p.newWriter(w, p.cols)
	if err != nil {
		return nil, fmt.Errorf("open parquet writer: %w", err)
	}
	if own == nil {
		own = p.Ownership
	}
	f := &File{p: p, own: own, fw: fw, lineage: lineage, row: make([]any, len(p.cols)), keyParts: make([]string, len(p.keyIdx)), epoch: -1}
	f.lineage.putFile(f.row[len(p.landed):])
	return f, nil
}

// Add lands one source row as the change ch, or skips it:
//
//   - a bucket column other than registry.Bucket(customer_id) is ErrWrongBucket (exit 3);
//   - the change's instant is the watermark column for c, u and r, the commit time for a
//     delete (d) or a row without a watermark; a row the shard did not own at that
//     instant is skipped and counted (Unowned);
//   - PCI columns with policy token, last4, bin or redact go through the Tokenizer
//     (never NULL ones): tokenized on the batch path, verified on the CDC path, where
//     the connector's transform tokenized them before Kafka;
//   - lineage is filled (the epoch Ownership gave), the row added to the checksum and
//     written.
//
// Errors name the key, never a PCI value; the caller adds where the row came from.
func (f *File) Add(src []any, ch Change) error {
	p, row := f.p, f.row
	copy(row, src)
	for i, k := range p.keyIdx {
		f.keyParts[i] = KeyValueText(row[k])
	}
	cust, _ := row[p.custIdx].(int64)
	b, _ := row[p.buckIdx].(int32)
	if want := registry.Bucket(cust, p.buckets); int(b) != want {
		return exitcode.Wrap(exitcode.CheckFail, fmt.Errorf("%w: key %s customer_id %d has bucket %d, registry.Bucket gives %d; fix the application's bucket computation",
			ErrWrongBucket, KeyText(f.keyParts...), cust, b, want))
	}
	instant := ch.CommitTS
	if ch.Op != "d" {
		if wm, ok := row[p.wmIdx].(time.Time); ok {
			instant = wm
		}
	}
	epoch, ok := f.own.Owned(f.lineage.Shard, int(b), instant)
	if !ok {
		f.unowned++
		return nil
	}
	for i, c := range p.landed {
		if c.PCI == "" || c.PCI == registry.PCIKeep || row[i] == nil {
			continue
		}
		s, _ := row[i].(string)
		tok, err := p.tokenizer.Apply(c, s)
		if err != nil {
			// the error never carries the value
			return fmt.Errorf("column %s of key %s: %w", c.Name, KeyText(f.keyParts...), err)
		}
		row[i] = tok
		if c.PCI == registry.PCIToken {
			if id, ok := tokenize.KeyIDOf(tok); ok && !f.keyIDs[id] {
				if f.keyIDs == nil {
					f.keyIDs = map[string]bool{}
				}
				f.keyIDs[id] = true
			}
		}
	}
	f.epoch = max(f.epoch, epoch)
	f.lineage.RegistryEpoch = epoch
	f.lineage.Change = ch
	f.lineage.putChange(row[len(p.landed):], row[p.wmIdx])
	ver, _ := row[p.verIdx].(int64)
	f.sum.addParts(f.keyParts, ver)
	if err := f.fw.Write(row); err != nil {
		return fmt.Errorf("write row: %w", err)
	}
	return nil
}

// Close writes the file's footer; the underlying writer stays open.
func (f *File) Close() error {
	if err := f.fw.Close(); err != nil {
		return fmt.Errorf("close parquet writer: %w", err)
	}
	return nil
}

// Checksum is the count and checksum of the rows written.
func (f *File) Checksum() *Checksum { return &f.sum }

// Unowned is the number of rows skipped because the shard did not own them.
func (f *File) Unowned() int64 { return f.unowned }

// KeyIDs are the tokenizer key ids of the token-policy values written, sorted: one,
// except in a file that spans a key rotation (decision 0014); none in a table without
// token columns.
func (f *File) KeyIDs() []string {
	ids := make([]string, 0, len(f.keyIDs))
	for id := range f.keyIDs {
		ids = append(ids, id)
	}
	sort.Strings(ids)
	return ids
}

// Epoch is the newest _registry_epoch written, and false when no row was written: the
// caller then takes the epoch of its file's own instant.
func (f *File) Epoch() (int, bool) { return f.epoch, f.epoch >= 0 }

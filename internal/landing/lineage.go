package landing

import (
	"time"

	"github.com/shopsphere/shardflow/internal/registry"
)

// Lineage column names, appended after a table's landed columns in every file. Nothing
// here varies with the run that landed the file (its time, its code version): those are
// in the manifest, so landing the same rows again gives a byte-identical file, which
// load skips (docs/contracts.md §5).
const (
	ColShard         = "_shard"
	ColSource        = "_source"
	ColOp            = "_op"
	ColRegistryEpoch = "_registry_epoch"
	ColWindowStart   = "_window_start"
	ColWindowEnd     = "_window_end"
	ColCommitTS      = "_commit_ts"
	ColLSN           = "_lsn"
	ColTxID          = "_txid"
	ColAbsent        = "_absent_columns"
)

// LineageColumns are the lineage columns with their shards.yaml-style types.
var LineageColumns = []Column{
	{ColShard, "text"},
	{ColSource, "text"},
	{ColOp, "text"},
	{ColRegistryEpoch, "integer"},
	{ColWindowStart, "timestamptz"},
	{ColWindowEnd, "timestamptz"},
	{ColCommitTS, "timestamptz"},
	{ColLSN, "bigint"},
	{ColTxID, "bigint"},
	{ColAbsent, "text"},
}

// RetiredColumns are lineage columns that files landed by earlier versions carry and
// this version no longer writes: a reader accepts them and loads nothing from them.
// _extracted_at (the run's time) moved to the manifest so that landing the same rows
// again gives the same bytes (docs/decisions/0019).
var RetiredColumns = map[string]bool{"_extracted_at": true}

// Columns returns the full column list of a landed file of table t: its landed columns
// (policy != drop) followed by LineageColumns.
func Columns(t registry.Table) []Column {
	var out []Column
	for _, c := range t.Landed() {
		out = append(out, Column{c.Name, c.Type})
	}
	return append(out, LineageColumns...)
}

// Change is the part of a row's lineage that the source says of each row: what
// happened to it and where in the shard's history.
type Change struct {
	Op       string    // _op: c, u, d, or r (a read: every batch row, a CDC snapshot row)
	CommitTS time.Time // _commit_ts: the commit time; a batch row, whose commit is not known, gives its watermark
	LSN      int64     // _lsn: the change's WAL position (CDC files only)
	TxID     int64     // _txid: the source transaction (CDC files only)
	// Absent is _absent_columns: the declared columns (shards.yaml adding: true) the
	// source row did not have because its shard lacked them yet, comma-separated in
	// shards.yaml order; their values are NULL in the row, and that NULL is not the
	// source's. "" (NULL in the file) for a row that had every declared column.
	Absent string
}

// Lineage is the values of LineageColumns for one landed row. The per-file fields are
// set once for a file; Pipeline sets RegistryEpoch and Change for each row.
type Lineage struct {
	Shard         string    // _shard
	Source        Source    // _source
	RegistryEpoch int       // _registry_epoch: the epoch of the ownership that accepted the row
	WindowStart   time.Time // _window_start (batch files only)
	WindowEnd     time.Time // _window_end (batch files only)
	Change

	// the last _op and _absent_columns boxed into a row, reused while they repeat
	op, absent       string
	opBox, absentBox any
}

// Put writes l into dst, one value per LineageColumns entry in that order. A batch
// file has NULL _lsn and _txid, a CDC file NULL _window_start and _window_end.
func (l *Lineage) Put(dst []any) {
	l.putFile(dst)
	l.putChange(dst, nil)
}

// putFile writes the fields that are the same for every row of a file.
func (l *Lineage) putFile(dst []any) {
	dst[0] = l.Shard
	dst[1] = string(l.Source)
	dst[4], dst[5] = nil, nil
	if l.Source == Batch {
		dst[4], dst[5] = l.WindowStart, l.WindowEnd
	}
	dst[7], dst[8] = nil, nil
}

// putChange writes the fields that vary by row, boxing as little as it can: _op and
// _absent_columns reuse the previous row's boxes while they repeat, and wm (the row's
// watermark value), when it is a time.Time equal to CommitTS, is stored as _commit_ts
// as it is (a batch row's _commit_ts is its watermark).
func (l *Lineage) putChange(dst []any, wm any) {
	if l.opBox == nil || l.op != l.Op {
		l.op, l.opBox = l.Op, l.Op
	}
	dst[2] = l.opBox
	dst[3] = int32(l.RegistryEpoch)
	if t, ok := wm.(time.Time); ok && t.Equal(l.CommitTS) {
		dst[6] = wm
	} else {
		dst[6] = l.CommitTS
	}
	if l.Source == CDC {
		dst[7], dst[8] = l.LSN, l.TxID
	}
	dst[9] = nil
	if l.Absent != "" {
		if l.absentBox == nil || l.absent != l.Absent {
			l.absent, l.absentBox = l.Absent, l.Absent
		}
		dst[9] = l.absentBox
	}
}

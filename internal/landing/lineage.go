package landing

import "github.com/shopsphere/shardflow/internal/registry"

// Lineage column names, appended after a table's landed columns in every file.
const (
	ColShard         = "_shard"
	ColSource        = "_source"
	ColOp            = "_op"
	ColRegistryEpoch = "_registry_epoch"
	ColWindowStart   = "_window_start"
	ColWindowEnd     = "_window_end"
	ColExtractedAt   = "_extracted_at"
	ColCommitTS      = "_commit_ts"
	ColLSN           = "_lsn"
	ColTxID          = "_txid"
)

// LineageColumns are the lineage columns with their shards.yaml-style types.
var LineageColumns = []Column{
	{ColShard, "text"},
	{ColSource, "text"},
	{ColOp, "text"},
	{ColRegistryEpoch, "integer"},
	{ColWindowStart, "timestamptz"},
	{ColWindowEnd, "timestamptz"},
	{ColExtractedAt, "timestamptz"},
	{ColCommitTS, "timestamptz"},
	{ColLSN, "bigint"},
	{ColTxID, "bigint"},
}

// Columns returns the full column list of a landed file of table t: its landed columns
// (policy != drop) followed by LineageColumns.
func Columns(t registry.Table) []Column {
	var out []Column
	for _, c := range t.Landed() {
		out = append(out, Column{c.Name, c.Type})
	}
	return append(out, LineageColumns...)
}

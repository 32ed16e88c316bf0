// Package landing defines what lands in the object store: the deterministic keys of data
// files and manifests, the manifest that makes a file count as landed, the Parquet layout
// of landed rows (the table's landed columns plus lineage), and the order-independent row
// checksum that extract, load, dq and dbt all compute the same way (docs/contracts.md §5).
//
// It also holds the one row pipeline of both paths (Pipeline): from a source row to a
// landed row (bucket check, ownership at the change's instant, tokenization, lineage,
// checksum) and the seams it writes through (Tokenizer, FileWriter, Ownership). The
// pipeline lives here, not in a package of its own, because what it produces is exactly
// this package's contract: the columns, lineage values and checksum of a landed file;
// extract and the CDC consumer only bring the rows (a keyset page, a change event) and
// the file's place in the object store.
package landing

import (
	"encoding/json"
	"fmt"
	"time"
)

// Source is the path a file came from.
type Source string

// Sources.
const (
	Batch Source = "batch"
	CDC   Source = "cdc"
)

// FormatVersion is the manifest format written by this code.
const FormatVersion = 1

// Column is one column of a landed file.
type Column struct {
	Name string `json:"name"`
	Type string `json:"type"` // the shards.yaml type for table columns; see LineageColumns for lineage
}

// Manifest describes one landed data file. It is written after the data file; a data
// file without its manifest has not landed and is ignored by load.
type Manifest struct {
	Format int    `json:"format"`
	Table  string `json:"table"`
	Shard  string `json:"shard"`
	Source Source `json:"source"`

	// batch
	WindowStart *time.Time `json:"window_start,omitempty"`
	WindowEnd   *time.Time `json:"window_end,omitempty"`

	// cdc: the Kafka records this file holds, inclusive
	Topic       string `json:"topic,omitempty"`
	Partition   *int32 `json:"partition,omitempty"`
	OffsetFirst *int64 `json:"offset_first,omitempty"`
	OffsetLast  *int64 `json:"offset_last,omitempty"`
	// CommitLast is the latest commit time on the shard among the file's change events
	// (none when it holds only tombstones): loaded, the warehouse holds the shard's
	// changes up to it (commit → warehouse freshness, docs/monitoring.md).
	CommitLast *time.Time `json:"commit_last,omitempty"`

	RegistryEpoch int      `json:"registry_epoch"`
	Rows          int64    `json:"rows"`
	Checksum      string   `json:"checksum"` // see Checksum
	DataKey       string   `json:"data_key"`
	DataBytes     int64    `json:"data_bytes"`
	DataSHA256    string   `json:"data_sha256"`
	Columns       []Column `json:"columns"`
	// AbsentColumns are the declared columns some of the file's rows lacked on their
	// shard (rolling out, shards.yaml adding: true): NULL in those rows, which name them in
	// _absent_columns.
	AbsentColumns  []string  `json:"absent_columns,omitempty"`
	TokenizerKeyID string    `json:"tokenizer_key_id"`
	ExtractedAt    time.Time `json:"extracted_at"`
	CodeVersion    string    `json:"code_version"`
}

// Marshal encodes the manifest as indented JSON.
func (m *Manifest) Marshal() ([]byte, error) { return json.MarshalIndent(m, "", "  ") }

// ParseManifest decodes a manifest and checks the fields every reader relies on.
func ParseManifest(data []byte) (*Manifest, error) {
	var m Manifest
	if err := json.Unmarshal(data, &m); err != nil {
		return nil, fmt.Errorf("parse manifest: %w", err)
	}
	if m.Format != FormatVersion {
		return nil, fmt.Errorf("parse manifest: format %d, want %d", m.Format, FormatVersion)
	}
	if m.Table == "" || m.Shard == "" || m.DataKey == "" || (m.Source != Batch && m.Source != CDC) {
		return nil, fmt.Errorf("parse manifest: table, shard, source and data_key are required")
	}
	return &m, nil
}

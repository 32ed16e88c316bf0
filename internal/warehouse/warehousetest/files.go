package warehousetest

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"time"

	"github.com/google/uuid"

	"github.com/shopsphere/shardflow/internal/landing"
	"github.com/shopsphere/shardflow/internal/registry"
)

// Orders is the table the contract test loads: the shape of shards.yaml's orders.
var Orders = registry.Table{
	Name:       "orders",
	PrimaryKey: []string{"order_id"},
	Watermark:  "updated_at",
	Version:    "row_version",
	Columns: []registry.Column{
		{Name: "order_id", Type: "uuid"},
		{Name: "customer_id", Type: "bigint"},
		{Name: "bucket", Type: "integer"},
		{Name: "status", Type: "text"},
		{Name: "total_cents", Type: "bigint"},
		{Name: "deleted", Type: "boolean"},
		{Name: "created_at", Type: "timestamptz"},
		{Name: "updated_at", Type: "timestamptz"},
		{Name: "row_version", Type: "bigint"},
	},
}

// Row is one orders row of a test file.
type Row struct {
	ID         uuid.UUID
	Customer   int64
	Status     string
	Total      *int64 // nil lands as NULL
	UpdatedAt  time.Time
	RowVersion int64
}

// Rows makes n rows with ids derived from seed, updated inside [t0, t0+1h).
func Rows(seed string, n int, t0 time.Time) []Row {
	out := make([]Row, n)
	for i := range out {
		total := int64(100 * (i + 1))
		out[i] = Row{
			ID:         uuid.NewSHA1(uuid.NameSpaceOID, []byte(seed+"/"+strconv.Itoa(i))),
			Customer:   int64(1000 + i),
			Status:     "placed",
			Total:      &total,
			UpdatedAt:  t0.Add(time.Duration(i) * time.Second),
			RowVersion: 1,
		}
	}
	return out
}

// File is a landed test file: its manifest and its bytes, written under a lake root.
type File struct {
	Manifest *landing.Manifest
	Path     string // the data file under the lake root
	Data     []byte
}

// WriteBatch writes rows as the batch file of (shard, [t0, t0+1h)) of Orders under lake
// (the object-store root: lake/<data key>), with its manifest, and returns it. Writing
// the same window again overwrites the same key, as a re-extract does.
func WriteBatch(lake, shard string, t0 time.Time, rows []Row) (*File, error) {
	return writeBatch(lake, shard, t0, rows, false)
}

// WriteRetiredBatch is WriteBatch in the layout of files landed before the retired
// lineage columns went (landing.RetiredColumns): _extracted_at after _window_end.
func WriteRetiredBatch(lake, shard string, t0 time.Time, rows []Row) (*File, error) {
	return writeBatch(lake, shard, t0, rows, true)
}

func writeBatch(lake, shard string, t0 time.Time, rows []Row, retired bool) (*File, error) {
	t1 := t0.Add(time.Hour)
	key := landing.BatchKey(Orders.Name, shard, t0, t1)
	cols := landing.Columns(Orders)
	extracted := time.Date(2026, 11, 24, 12, 0, 0, 0, time.UTC)
	if retired {
		at := slices.IndexFunc(cols, func(c landing.Column) bool { return c.Name == landing.ColCommitTS })
		cols = append(cols[:at:at], append([]landing.Column{{Name: "_extracted_at", Type: "timestamptz"}}, cols[at:]...)...)
	}
	var buf bytes.Buffer
	var sum landing.Checksum
	recs := make([][]any, len(rows))
	for i, r := range rows {
		var total any
		if r.Total != nil {
			total = *r.Total
		}
		recs[i] = []any{
			r.ID.String(), r.Customer, int32(r.Customer % 4096), r.Status, total, false, r.UpdatedAt, r.UpdatedAt, r.RowVersion,
			shard, "batch", "r", int32(0), t0, t1, r.UpdatedAt, nil, nil, nil,
		}
		if retired {
			at := len(recs[i]) - 4 // before _commit_ts
			recs[i] = append(recs[i][:at:at], append([]any{extracted}, recs[i][at:]...)...)
		}
		sum.Add(landing.KeyText(r.ID.String()), r.RowVersion)
	}
	if err := writeParquet(&buf, cols, recs); err != nil {
		return nil, err
	}
	sha := sha256.Sum256(buf.Bytes())
	m := &landing.Manifest{
		Format: landing.FormatVersion, Table: Orders.Name, Shard: shard, Source: landing.Batch,
		WindowStart: &t0, WindowEnd: &t1, RegistryEpoch: 0,
		Rows: sum.Rows(), Checksum: sum.String(),
		DataKey: key, DataBytes: int64(buf.Len()), DataSHA256: hex.EncodeToString(sha[:]),
		Columns: cols, TokenizerKeyID: "k1", ExtractedAt: extracted, CodeVersion: "test",
	}
	p := filepath.Join(lake, filepath.FromSlash(key))
	if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
		return nil, err
	}
	if err := os.WriteFile(p, buf.Bytes(), 0o644); err != nil {
		return nil, err
	}
	mb, err := m.Marshal()
	if err != nil {
		return nil, err
	}
	if err := os.WriteFile(filepath.Join(lake, filepath.FromSlash(landing.ManifestKey(key))), mb, 0o644); err != nil {
		return nil, err
	}
	return &File{Manifest: m, Path: p, Data: buf.Bytes()}, nil
}

// writeParquet writes records (values in cols order; nil is NULL) with the landing zone's
// own writer, so the warehouse reads exactly what extract and tokenize cdc land.
func writeParquet(out *bytes.Buffer, cols []landing.Column, recs [][]any) error {
	w, err := landing.NewParquetWriter(out, cols)
	if err != nil {
		return err
	}
	for _, rec := range recs {
		if err := w.Write(rec); err != nil {
			return err
		}
	}
	return w.Close()
}

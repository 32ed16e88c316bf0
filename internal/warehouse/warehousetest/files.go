package warehousetest

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"time"

	"github.com/google/uuid"
	"github.com/parquet-go/parquet-go"

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
	t1 := t0.Add(time.Hour)
	key := landing.BatchKey(Orders.Name, shard, t0, t1)
	cols := landing.Columns(Orders)
	var buf bytes.Buffer
	var sum landing.Checksum
	extracted := time.Date(2026, 11, 24, 12, 0, 0, 0, time.UTC)
	recs := make([][]any, len(rows))
	for i, r := range rows {
		var total any
		if r.Total != nil {
			total = *r.Total
		}
		recs[i] = []any{
			r.ID.String(), r.Customer, int32(r.Customer % 4096), r.Status, total, false, r.UpdatedAt, r.UpdatedAt, r.RowVersion,
			shard, "batch", "r", int32(0), t0, t1, extracted, r.UpdatedAt, nil, nil,
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

// writeParquet writes records (values in cols order; nil is NULL) with every column
// optional, the types of docs/contracts.md §5.
func writeParquet(out *bytes.Buffer, cols []landing.Column, recs [][]any) error {
	g := parquet.Group{}
	for _, c := range cols {
		var n parquet.Node
		switch c.Type {
		case "uuid", "text":
			n = parquet.String()
		case "bigint":
			n = parquet.Int(64)
		case "integer":
			n = parquet.Int(32)
		case "boolean":
			n = parquet.Leaf(parquet.BooleanType)
		case "timestamptz":
			n = parquet.Timestamp(parquet.Microsecond)
		default:
			return fmt.Errorf("column %s: type %s not supported by the test writer", c.Name, c.Type)
		}
		g[c.Name] = parquet.Optional(n)
	}
	schema := parquet.NewSchema("landed", g)
	leaf := map[string]int{}
	for i, p := range schema.Columns() {
		leaf[p[0]] = i
	}
	w := parquet.NewWriter(out, schema)
	for _, rec := range recs {
		row := make(parquet.Row, len(cols))
		for i, v := range rec {
			li := leaf[cols[i].Name]
			var pv parquet.Value
			switch x := v.(type) {
			case nil:
				row[li] = parquet.NullValue().Level(0, 0, li)
				continue
			case string:
				pv = parquet.ByteArrayValue([]byte(x))
			case int64:
				pv = parquet.Int64Value(x)
			case int32:
				pv = parquet.Int32Value(x)
			case bool:
				pv = parquet.BooleanValue(x)
			case time.Time:
				pv = parquet.Int64Value(x.UnixMicro())
			default:
				return fmt.Errorf("column %s: value type %T", cols[i].Name, v)
			}
			row[li] = pv.Level(0, 1, li)
		}
		if _, err := w.WriteRows([]parquet.Row{row}); err != nil {
			return err
		}
	}
	return w.Close()
}

package load_test

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/google/uuid"

	"github.com/shopsphere/shardflow/internal/landing"
	"github.com/shopsphere/shardflow/internal/load"
	"github.com/shopsphere/shardflow/internal/objstore/dir"
	"github.com/shopsphere/shardflow/internal/registry"
	"github.com/shopsphere/shardflow/internal/warehouse"
	"github.com/shopsphere/shardflow/internal/warehouse/duckdb"
)

// landAll writes one window of every table of the repository's shards.yaml with the
// Parquet writer extract uses (every landed column, PCI columns already tokenized,
// dropped ones absent), and returns the manifests.
func landAll(t *testing.T, reg *registry.Registry, lake string, rows int) []*landing.Manifest {
	t.Helper()
	t0 := time.Date(2026, 11, 24, 9, 0, 0, 0, time.UTC)
	t1 := t0.Add(time.Hour)
	var out []*landing.Manifest
	for _, tb := range reg.Tables {
		cols := landing.Columns(tb)
		var buf bytes.Buffer
		w, err := landing.NewParquetWriter(&buf, cols)
		if err != nil {
			t.Fatal(err)
		}
		var sum landing.Checksum
		for i := 0; i < rows; i++ {
			vals := map[string]any{}
			id := uuid.NewSHA1(uuid.NameSpaceOID, []byte(fmt.Sprintf("%s/%d", tb.Name, i/2))).String()
			for _, c := range tb.Landed() {
				switch c.Type {
				case "uuid":
					vals[c.Name] = uuid.NewSHA1(uuid.NameSpaceURL, []byte(fmt.Sprintf("%s/%s/%d", tb.Name, c.Name, i))).String()
				case "text":
					vals[c.Name] = fmt.Sprintf("%s-%d", c.Name, i%3)
				case "bigint":
					vals[c.Name] = int64(i + 1)
				case "integer":
					vals[c.Name] = int32(i % 7)
				case "boolean":
					vals[c.Name] = i%5 == 0
				case "timestamptz":
					vals[c.Name] = t0.Add(time.Duration(i) * time.Second)
				}
			}
			if c, ok := vals["card_number"]; ok {
				vals["card_number"] = "tok_k1_" + c.(string)[:10]
			}
			// composite keys: (order_id, line_no) pairs stay unique
			vals[tb.PrimaryKey[0]] = id
			if len(tb.PrimaryKey) > 1 {
				vals[tb.PrimaryKey[1]] = int32(i % 2)
			} else {
				vals[tb.PrimaryKey[0]] = uuid.NewSHA1(uuid.NameSpaceOID, []byte(fmt.Sprintf("%s/%d", tb.Name, i))).String()
			}
			vals[tb.Version] = int64(1 + i%3)
			lineage := make([]any, len(landing.LineageColumns))
			wm, _ := vals[tb.Watermark].(time.Time)
			l := landing.Lineage{Shard: "s02", Source: landing.Batch, RegistryEpoch: 1, WindowStart: t0, WindowEnd: t1, Change: landing.Change{Op: "r", CommitTS: wm}}
			l.Put(lineage)
			var rec []any
			for _, c := range tb.Landed() {
				rec = append(rec, vals[c.Name])
			}
			rec = append(rec, lineage...)
			if err := w.Write(rec); err != nil {
				t.Fatal(err)
			}
			var key []string
			for _, k := range tb.PrimaryKey {
				key = append(key, fmt.Sprint(vals[k]))
			}
			sum.Add(landing.KeyText(key...), vals[tb.Version].(int64))
		}
		if err := w.Close(); err != nil {
			t.Fatal(err)
		}
		key := landing.BatchKey(tb.Name, "s02", t0, t1)
		sha := sha256.Sum256(buf.Bytes())
		m := &landing.Manifest{Format: 1, Table: tb.Name, Shard: "s02", Source: landing.Batch, WindowStart: &t0, WindowEnd: &t1,
			RegistryEpoch: 1, Rows: sum.Rows(), Checksum: sum.String(), DataKey: key, DataBytes: int64(buf.Len()),
			DataSHA256: hex.EncodeToString(sha[:]), Columns: cols, TokenizerKeyID: "k1", ExtractedAt: t0, CodeVersion: "test"}
		p := filepath.Join(lake, filepath.FromSlash(key))
		os.MkdirAll(filepath.Dir(p), 0o755)
		if err := os.WriteFile(p, buf.Bytes(), 0o644); err != nil {
			t.Fatal(err)
		}
		mb, _ := m.Marshal()
		if err := os.WriteFile(filepath.Join(lake, filepath.FromSlash(landing.ManifestKey(key))), mb, 0o644); err != nil {
			t.Fatal(err)
		}
		out = append(out, m)
	}
	return out
}

// TestEveryTableOfTheRegistry loads a window of orders, order_items (a composite key)
// and payments (tokenized and dropped PCI columns) as extract's writer lands them, into
// DuckDB and into Snowflake (fakesnow), and checks count and checksum per file against
// the manifests, and that the dropped PCI columns do not exist in the warehouse.
func TestEveryTableOfTheRegistry(t *testing.T) {
	reg, err := registry.Load("../../shards.yaml")
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	lake := t.TempDir()
	manifests := landAll(t, reg, lake, 40)
	store := localDir{dirStore{Dir: dir.Store{Root: lake}}}

	check := func(t *testing.T, w warehouse.Warehouse) {
		if err := w.Ensure(ctx, reg.Tables); err != nil {
			t.Fatal(err)
		}
		l := &load.Loader{Store: store, Warehouse: w, Registry: reg, TempDir: t.TempDir()}
		sums, err := l.LoadAll(ctx, load.Filter{})
		if err != nil {
			t.Fatal(err)
		}
		if len(sums) != 1 || sums[0].Loaded != len(reg.Tables) || sums[0].Rows != int64(40*len(reg.Tables)) {
			t.Fatalf("summary %+v, want %d files of 40 rows", sums, len(reg.Tables))
		}
		c := w.(warehouse.Checker)
		for _, m := range manifests {
			tb, _ := reg.Table(m.Table)
			n, s, err := c.FileChecksum(ctx, tb, m.DataKey)
			if err != nil {
				t.Fatal(err)
			}
			if n != m.Rows || s != m.Checksum {
				t.Fatalf("%s: %d rows checksum %s, manifest %d %s", m.Table, n, s, m.Rows, m.Checksum)
			}
		}
		cols, err := c.StringColumns(ctx)
		if err != nil {
			t.Fatal(err)
		}
		for _, col := range cols["payments"] {
			if col == "card_cvv" || col == "card_expiry" {
				t.Fatalf("raw.payments has the dropped PCI column %s", col)
			}
		}
		if len(cols["payments"]) == 0 || len(cols["order_items"]) == 0 {
			t.Fatalf("string columns: %v", cols)
		}
	}
	t.Run("duckdb", func(t *testing.T) {
		w, err := duckdb.Open(ctx, filepath.Join(t.TempDir(), "w.duckdb"))
		if err != nil {
			t.Fatal(err)
		}
		defer w.Close()
		check(t, w)
	})
	t.Run("snowflake", func(t *testing.T) {
		w := fakesnow.Open(t, lake)
		defer w.Close()
		check(t, w)
	})
}

package extract

import (
	"bytes"
	"context"
	"errors"
	"io"
	"os"
	"path/filepath"
	"testing"

	"github.com/jackc/pgx/v5"
	"github.com/parquet-go/parquet-go"

	"github.com/shopsphere/shardflow/internal/landing"
	"github.com/shopsphere/shardflow/internal/objstore/dir"
	"github.com/shopsphere/shardflow/internal/registry"
	"github.com/shopsphere/shardflow/internal/tokenize"
)

// testKey is the tokenizer key of the tests (32+ bytes).
const testKey = "test-tokenizer-key-0123456789abcdef"

// lakeT is a landing zone in a temporary directory.
type lakeT struct {
	dir.Store
}

func (l lakeT) has(t *testing.T, w Window, shard, table string) bool {
	t.Helper()
	_, err := os.Stat(filepath.Join(l.Root, landing.ManifestKey(landing.BatchKey(table, shard, w.Start, w.End))))
	return err == nil
}

// column reads one column of a landed data file as strings ("" for NULL).
func (l lakeT) column(t *testing.T, dataKey, name string) []string {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(l.Root, dataKey))
	if err != nil {
		t.Fatal(err)
	}
	return parquetColumn(t, b, name)
}

func parquetColumn(t *testing.T, b []byte, name string) []string {
	t.Helper()
	f, err := parquet.OpenFile(bytes.NewReader(b), int64(len(b)))
	if err != nil {
		t.Fatal(err)
	}
	leaf, ok := f.Schema().Lookup(name)
	if !ok {
		t.Fatalf("no column %s in the file", name)
	}
	var out []string
	for _, rg := range f.RowGroups() {
		pages := rg.ColumnChunks()[leaf.ColumnIndex].Pages()
		for {
			p, err := pages.ReadPage()
			if errors.Is(err, io.EOF) {
				break
			}
			if err != nil {
				t.Fatal(err)
			}
			vals := make([]parquet.Value, p.NumValues())
			n, err := p.Values().ReadValues(vals)
			if err != nil && !errors.Is(err, io.EOF) {
				t.Fatal(err)
			}
			for _, v := range vals[:n] {
				if v.IsNull() {
					out = append(out, "")
				} else {
					out = append(out, v.String())
				}
			}
		}
		pages.Close()
	}
	return out
}

func (l lakeT) keys(t *testing.T, res *Result) map[string]bool {
	t.Helper()
	out := map[string]bool{}
	for _, k := range l.column(t, res.DataKey, "order_id") {
		out[k] = true
	}
	return out
}

func newTestExtractor(t *testing.T, reg *registry.Registry, conn *pgx.Conn) (*Extractor, lakeT) {
	t.Helper()
	lake := lakeT{dir.Store{Root: t.TempDir()}}
	tok, err := tokenize.New(reg.Tokenizer.KeyID, []byte(testKey))
	if err != nil {
		t.Fatal(err)
	}
	_ = context.Background
	return &Extractor{Registry: reg, Conn: conn, Store: lake, Tokenizer: tok, NewWriter: func(w io.Writer, c []landing.Column) (FileWriter, error) { return landing.NewParquetWriter(w, c) }, CodeVersion: "test"}, lake
}

package extract

import (
	"context"
	"os"
	"path/filepath"
	"testing"

	"github.com/jackc/pgx/v5"

	"github.com/shopsphere/shardflow/internal/extract/extracttest"
	"github.com/shopsphere/shardflow/internal/landing"
	"github.com/shopsphere/shardflow/internal/objstore/dir"
	"github.com/shopsphere/shardflow/internal/registry"
	"github.com/shopsphere/shardflow/internal/tokenize"
	"github.com/shopsphere/shardflow/internal/window"
)

// testKey is the tokenizer key of the tests (32+ bytes).
const testKey = "test-tokenizer-key-0123456789abcdef"

// lakeT is a landing zone in a temporary directory.
type lakeT struct {
	dir.Store
}

func (l lakeT) has(t *testing.T, w window.Window, shard, table string) bool {
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
	return extracttest.ParquetColumn(t, b, name)
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
	return &Extractor{Registry: reg, Conn: conn, Store: lake, Tokenizer: tok, NewWriter: landing.OpenParquet, CodeVersion: "test"}, lake
}

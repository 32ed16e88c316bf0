package duckdb_test

import (
	"context"
	"path/filepath"
	"testing"

	"github.com/shopsphere/shardflow/internal/warehouse"
	"github.com/shopsphere/shardflow/internal/warehouse/duckdb"
	"github.com/shopsphere/shardflow/internal/warehouse/warehousetest"
)

func open(t *testing.T, _ string) warehouse.Warehouse {
	t.Helper()
	w, err := duckdb.Open(context.Background(), filepath.Join(t.TempDir(), "warehouse.duckdb"))
	if err != nil {
		t.Fatal(err)
	}
	return w
}

func TestContract(t *testing.T) { warehousetest.Run(t, open) }

// TestVersion pins the DuckDB engine duckdb-go embeds: dbt's duckdb must be the same
// (py/dbt pins it; docs/warehouse.md).
func TestVersion(t *testing.T) {
	w := open(t, "").(*duckdb.Warehouse)
	defer w.Close()
	v, err := w.Version(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("SELECT version() = %s", v)
	if v != "v1.5.6" {
		t.Fatalf("embedded DuckDB is %s; docs/warehouse.md and py/dbt pin v1.5.6", v)
	}
}

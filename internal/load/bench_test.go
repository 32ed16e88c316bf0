package load_test

import (
	"context"
	"fmt"
	"path/filepath"
	"testing"
	"time"

	"github.com/shopsphere/shardflow/internal/load"
	"github.com/shopsphere/shardflow/internal/objstore/dir"
	"github.com/shopsphere/shardflow/internal/registry"
	"github.com/shopsphere/shardflow/internal/warehouse/duckdb"
	"github.com/shopsphere/shardflow/internal/warehouse/warehousetest"
	"github.com/shopsphere/shardflow/internal/window"
)

// benchRows is the size of the window the benchmarks load.
const benchRows = 500_000

// BenchmarkLoadWindow measures load's rate for one window into DuckDB: sha256 of the
// file, one transaction with read_parquet, count+checksum verification, history.
// BenchmarkReadParquetInsert is the reference in the same run: DuckDB's bare
// INSERT ... SELECT FROM read_parquet of the same file, nothing else.
func BenchmarkLoadWindow(b *testing.B) {
	lake := b.TempDir()
	f, err := warehousetest.WriteBatch(lake, "s00", warehousetest.T0, warehousetest.Rows("bench", benchRows, warehousetest.T0))
	if err != nil {
		b.Fatal(err)
	}
	ctx := context.Background()
	reg := &registry.Registry{Tables: []registry.Table{warehousetest.Orders}}
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		b.StopTimer()
		w, err := duckdb.Open(ctx, filepath.Join(b.TempDir(), fmt.Sprintf("w%d.duckdb", i)))
		if err != nil {
			b.Fatal(err)
		}
		if err := w.Ensure(ctx, reg.Tables); err != nil {
			b.Fatal(err)
		}
		l := &load.Loader{Store: localDir{dirStore{Dir: dir.Store{Root: lake}}}, Warehouse: w, Registry: reg}
		b.StartTimer()
		s, err := l.LoadWindow(ctx, "orders", "s00", window.Window{Start: warehousetest.T0, End: warehousetest.T0.Add(time.Hour)})
		b.StopTimer()
		if err != nil || s.Rows != f.Manifest.Rows {
			b.Fatalf("load: %+v %v", s, err)
		}
		w.Close()
	}
	reportRows(b)
}

func BenchmarkReadParquetInsert(b *testing.B) {
	lake := b.TempDir()
	f, err := warehousetest.WriteBatch(lake, "s00", warehousetest.T0, warehousetest.Rows("bench", benchRows, warehousetest.T0))
	if err != nil {
		b.Fatal(err)
	}
	ctx := context.Background()
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		b.StopTimer()
		w, err := duckdb.Open(ctx, filepath.Join(b.TempDir(), fmt.Sprintf("w%d.duckdb", i)))
		if err != nil {
			b.Fatal(err)
		}
		if err := w.Ensure(ctx, []registry.Table{warehousetest.Orders}); err != nil {
			b.Fatal(err)
		}
		b.StartTimer()
		_, err = w.DB().ExecContext(ctx, "INSERT INTO raw.orders BY NAME SELECT * FROM read_parquet(?, hive_partitioning = false)", f.Path)
		b.StopTimer()
		if err != nil {
			b.Fatal(err)
		}
		w.Close()
	}
	reportRows(b)
}

// reportRows reports rows/s over the timed part only (the load or the INSERT), so
// ns/op and rows/s describe the same interval: opening and preparing a fresh
// warehouse per iteration is outside it.
func reportRows(b *testing.B) {
	b.ReportMetric(float64(benchRows*b.N)/b.Elapsed().Seconds(), "rows/s")
}

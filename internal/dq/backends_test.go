package dq

import (
	"context"
	"fmt"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/google/uuid"

	"github.com/shopsphere/shardflow/internal/fleet/fleettest"
	"github.com/shopsphere/shardflow/internal/landing"
	"github.com/shopsphere/shardflow/internal/registry"
	"github.com/shopsphere/shardflow/internal/warehouse"
	"github.com/shopsphere/shardflow/internal/warehouse/duckdb"
	"github.com/shopsphere/shardflow/internal/warehouse/snowflake/snowflaketest"
	"github.com/shopsphere/shardflow/internal/warehouse/warehousetest"
	"github.com/shopsphere/shardflow/internal/window"
)

// backendAnswers is what dq's own warehouse SQL (the queries not delegated to the
// backend's Checker) answers on one backend, for the same loaded files.
type backendAnswers struct {
	Pairs          []Pair
	DupLatest      int64
	DupKeys        []string
	PCIHits        int64
	PCIRows        int64
	Fresh          []string
	Landed         map[string]int64
	Moved          []string
	ResultsWritten int64
	ToScan         []int // files to scan: before any record, after s01's
	PCIInS01       int64 // hits among s01's file only
	DupInS01       int64 // keys owned twice among the keys of s01's file
	BatchInS01     int64 // pairs loaded twice among the pairs of s01's file
}

// TestWarehouseSQLOnEachBackend runs dq's warehouse queries in both dialects: on DuckDB,
// and through gosnowflake on fakesnow (the Snowflake stand-in) with the Snowflake SQL,
// over the same files loaded by each backend's own LoadFile. Both must give the expected
// answers: the window's (key, version) pairs; no key owned twice at its latest version
// (a second shard's file of the same keys, in buckets it never owned, is judged by the
// ownership history and not counted); a PAN typed into a string column found and a
// non-Luhn digit run not; the freshness per shard; the landed versions of keys; the rows
// of a moved bucket a source landed; the results table created (schema included: on
// Snowflake it is DB.DQ, which the first version of EnsureResults got wrong) and written;
// the incremental PCI scan's ledger (files to scan, a scan of some files, recorded); the
// duplicate checks over the keys of one file.
func TestWarehouseSQLOnEachBackend(t *testing.T) {
	ctx := context.Background()
	reg := fleettest.Load(t, "../../shards.yaml")
	reg.Tables = []registry.Table{warehousetest.Orders}
	t0 := warehousetest.T0
	rows := warehousetest.Rows("dq", 12, t0)
	rows[3].Status = "card 4111 1111 1111 1111 typed in" // a PAN in free text: one hit
	rows[4].Status = "order 1234567890123"               // 13 digits, not Luhn-valid: none
	rows[5].RowVersion = 3
	// s01's file: keys of buckets s00 owns (customer % 4096 is 1000+i: bucket 1000+i)
	copies := warehousetest.Rows("dq", 2, t0)
	srv := snowflaketest.Start()
	defer srv.Stop()

	backends := []struct {
		name string
		open func(t *testing.T, lake string) (*Warehouse, func())
	}{
		{"duckdb", func(t *testing.T, lake string) (*Warehouse, func()) {
			wh, err := duckdb.Open(ctx, filepath.Join(t.TempDir(), "wh.duckdb"))
			if err != nil {
				t.Fatal(err)
			}
			return &Warehouse{DB: wh.DB(), Dialect: landing.DuckDB, Raw: duckdb.Schema, Results: "dq.dq_results", Registry: reg, Checker: wh}, func() { wh.Close() }
		}},
		{"snowflake (fakesnow)", func(t *testing.T, lake string) (*Warehouse, func()) {
			wh := srv.Open(t, lake)
			db := wh.Config().Database // as tasks/dq names them (warehouse/backend.Opened.Qualify)
			return &Warehouse{DB: wh.DB(), Dialect: landing.Snowflake, Raw: db + ".RAW", Results: db + ".DQ.DQ_RESULTS", Registry: reg, Checker: wh}, func() { wh.Close() }
		}},
	}
	var answers []backendAnswers
	for _, b := range backends {
		t.Run(b.name, func(t *testing.T) {
			lake := t.TempDir()
			w, closeW := b.open(t, lake)
			defer closeW()
			wh := w.Checker.(warehouse.Warehouse)
			if err := wh.Ensure(ctx, reg.Tables); err != nil {
				t.Fatal(err)
			}
			for _, f := range []struct {
				shard string
				rows  []warehousetest.Row
			}{{"s00", rows}, {"s01", copies}} {
				file, err := warehousetest.WriteBatch(lake, f.shard, t0, f.rows)
				if err != nil {
					t.Fatal(err)
				}
				if _, err := wh.LoadFile(ctx, warehouse.File{Table: warehousetest.Orders, Manifest: file.Manifest, Path: file.Path}); err != nil {
					t.Fatal(err)
				}
			}
			var a backendAnswers
			var err error
			win := window.Window{Start: t0, End: t0.Add(time.Hour)}
			if a.Pairs, err = w.WindowPairs(ctx, "orders", "s00", win); err != nil {
				t.Fatalf("WindowPairs: %v", err)
			}
			if a.DupLatest, a.DupKeys, err = w.DuplicateLatest(ctx, "orders", nil); err != nil {
				t.Fatalf("DuplicateLatest: %v", err)
			}
			if a.PCIHits, a.PCIRows, err = w.ScanPCI(ctx, "orders", "status", nil); err != nil {
				t.Fatalf("ScanPCI: %v", err)
			}
			// the incremental scan's ledger: both files to scan; s01's found clean and
			// recorded; then only s00's
			if err := w.EnsureResults(ctx); err != nil {
				t.Fatal(err)
			}
			for step := 0; step < 2; step++ {
				files, err := w.FilesToCheck(ctx, PCIScanned, "orders")
				if err != nil {
					t.Fatalf("FilesToCheck: %v", err)
				}
				a.ToScan = append(a.ToScan, len(files))
				if step == 0 {
					s01 := []FileVersion{}
					for _, f := range files {
						if strings.Contains(f.Key, "shard=s01") {
							s01 = append(s01, f)
						}
					}
					if a.PCIInS01, _, err = w.ScanPCI(ctx, "orders", "status", []string{s01[0].Key}); err != nil {
						t.Fatalf("ScanPCI of s01's file: %v", err)
					}
					if a.DupInS01, _, err = w.DuplicateLatest(ctx, "orders", []string{s01[0].Key}); err != nil {
						t.Fatalf("DuplicateLatest among s01's file: %v", err)
					}
					if a.BatchInS01, _, err = w.BatchDuplicates(ctx, "orders", []string{s01[0].Key}); err != nil {
						t.Fatalf("BatchDuplicates among s01's file: %v", err)
					}
					if err := w.RecordChecked(ctx, PCIScanned, "r0", t0, s01); err != nil {
						t.Fatalf("RecordChecked: %v", err)
					}
				}
			}
			fresh, err := w.Freshness(ctx, "orders")
			if err != nil {
				t.Fatalf("Freshness: %v", err)
			}
			for _, f := range fresh {
				a.Fresh = append(a.Fresh, fmt.Sprintf("%s/%s %s", f.Shard, f.Source, f.MaxWatermark.UTC().Format(time.RFC3339)))
			}
			keys := []string{rows[5].ID.String(), rows[0].ID.String(), uuid.NewSHA1(uuid.NameSpaceOID, []byte("never")).String()}
			if a.Landed, err = w.LandedVersions(ctx, "orders", "s00", keys); err != nil {
				t.Fatalf("LandedVersions: %v", err)
			}
			moved, err := w.landedMovedRows(ctx, warehousetest.Orders, "s01", []registry.Range{{Lo: 1000, Hi: 1000}}, t0, t0.Add(time.Hour))
			if err != nil {
				t.Fatalf("landedMovedRows: %v", err)
			}
			for _, m := range moved {
				a.Moved = append(a.Moved, fmt.Sprintf("%s v%d b%d %s", m.key, m.version, m.bucket, m.at.UTC().Format(time.RFC3339)))
			}
			now := time.Date(2026, 11, 24, 12, 0, 0, 0, time.UTC)
			results := []Result{{RunID: "r1", Check: "completeness", Shard: "s00", Table: "orders", Window: &win, Status: Pass, CheckedAt: now},
				{RunID: "r1", Check: "pci_leak", Table: "orders", Status: Fail, Detail: "1 hit", CheckedAt: now}}
			for i := 0; i < 2; i++ { // the second run finds the table there
				if err := w.WriteResults(ctx, results); err != nil {
					t.Fatalf("WriteResults: %v", err)
				}
			}
			if err := w.DB.QueryRowContext(ctx, "SELECT count(*) FROM "+w.Results+" WHERE run_id = 'r1'").Scan(&a.ResultsWritten); err != nil {
				t.Fatal(err)
			}
			answers = append(answers, a)
		})
	}
	if len(answers) != len(backends) {
		return
	}
	d, s := answers[0], answers[1]
	if len(d.Pairs) != len(rows) || d.DupLatest != 0 || d.PCIHits != 1 || d.PCIRows != 1 || len(d.Fresh) != 2 ||
		!reflect.DeepEqual(d.Landed, map[string]int64{rows[5].ID.String(): 3, rows[0].ID.String(): 1}) || len(d.Moved) != 1 || d.ResultsWritten != 4 ||
		!reflect.DeepEqual(d.ToScan, []int{2, 1}) || d.PCIInS01 != 0 {
		t.Errorf("duckdb: %+v", d)
	}
	if !reflect.DeepEqual(d, s) {
		t.Errorf("the backends differ:\nduckdb    %+v\nsnowflake %+v", d, s)
	}
	t.Logf("both backends: %d window pairs, %d keys owned twice, PCI %d hit(s), freshness %s, landed versions %v, moved rows %s, %d results",
		len(d.Pairs), d.DupLatest, d.PCIHits, strings.Join(d.Fresh, "; "), d.Landed, strings.Join(d.Moved, "; "), d.ResultsWritten)
}

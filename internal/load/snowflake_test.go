package load_test

import (
	"context"
	"errors"
	"fmt"
	"os"
	"testing"

	"github.com/shopsphere/shardflow/internal/load"
	"github.com/shopsphere/shardflow/internal/objstore/dir"
	"github.com/shopsphere/shardflow/internal/registry"
	"github.com/shopsphere/shardflow/internal/warehouse"
	"github.com/shopsphere/shardflow/internal/warehouse/snowflake"
	"github.com/shopsphere/shardflow/internal/warehouse/snowflake/snowflaketest"
	"github.com/shopsphere/shardflow/internal/warehouse/warehousetest"
)

var fakesnow *snowflaketest.Server

func TestMain(m *testing.M) {
	fakesnow = snowflaketest.Start()
	code := m.Run()
	fakesnow.Stop()
	os.Exit(code)
}

// sfState is key → "rows checksum sha" from the history, after checking every entry's
// rows and that no row lacks an entry.
func sfState(t *testing.T, w *snowflake.Warehouse, db string) map[string]string {
	t.Helper()
	ctx := context.Background()
	h, err := w.History(ctx, warehouse.HistoryFilter{})
	if err != nil {
		t.Fatal(err)
	}
	out := map[string]string{}
	var sum int64
	for _, e := range h {
		n, s, err := w.FileChecksum(ctx, warehousetest.Orders, e.FileKey)
		if err != nil {
			t.Fatal(err)
		}
		if n != e.Rows || s != e.Checksum {
			t.Fatalf("%s: %d rows checksum %s, history says %d %s", e.FileKey, n, s, e.Rows, e.Checksum)
		}
		out[e.FileKey] = fmt.Sprintf("%d %s %s", n, s, e.DataSHA256)
		sum += n
	}
	var total int64
	if err := w.DB().QueryRowContext(ctx, "SELECT COUNT(*) FROM "+db+".RAW.orders").Scan(&total); err != nil {
		t.Fatal(err)
	}
	if total != sum {
		t.Fatalf("raw.orders has %d rows, the history accounts for %d", total, sum)
	}
	return out
}

// TestSnowflakeStagedLoad: load through the Snowflake backend (COPY from the stage; load
// only hashes the files, never copies them), dying at every step of the transaction,
// then re-running; and a corrupt file refused by its sha before COPY sees it.
func TestSnowflakeStagedLoad(t *testing.T) {
	fakesnow.Need(t)
	f := newFixture(t)
	ctx := context.Background()
	reg := &registry.Registry{Tables: []registry.Table{warehousetest.Orders}}
	open := func() (*snowflake.Warehouse, string) {
		w := fakesnow.Open(t, f.lake)
		t.Cleanup(func() { w.Close() })
		if err := w.Ensure(ctx, reg.Tables); err != nil {
			t.Fatal(err)
		}
		var db string
		if err := w.DB().QueryRowContext(ctx, "SELECT CURRENT_DATABASE()").Scan(&db); err != nil {
			t.Fatal(err)
		}
		return w, db
	}
	loader := func(w warehouse.Warehouse) *load.Loader {
		// no TempDir: a staged backend must not need a local copy
		return &load.Loader{Store: dirStore{Dir: dir.Store{Root: f.lake}}, Warehouse: w, Registry: reg, TempDir: "/nonexistent"}
	}

	ref, refDB := open()
	sums, err := loader(ref).LoadAll(ctx, load.Filter{})
	if err != nil {
		t.Fatal(err)
	}
	loaded := 0
	for _, s := range sums {
		loaded += s.Loaded
	}
	if loaded != len(f.files) {
		t.Fatalf("loaded %d files, want %d: %+v", loaded, len(f.files), sums)
	}
	want := sfState(t, ref, refDB)

	for _, step := range []string{snowflake.StepDeleted, snowflake.StepCopied, snowflake.StepVerified, snowflake.StepHistory} {
		t.Run(step, func(t *testing.T) {
			w, db := open()
			cctx, cancel := context.WithCancel(ctx)
			seen := 0
			w.Failpoint = func(s string) error {
				if s == step {
					if seen++; seen == 3 {
						cancel()
						return errCrash
					}
				}
				return nil
			}
			if _, err := loader(w).LoadAll(cctx, load.Filter{}); err == nil {
				t.Fatal("the run did not die")
			}
			w.Failpoint = nil
			if got := sfState(t, w, db); len(got) != 2 {
				t.Fatalf("after dying in the 3rd file at %s: %d files loaded, want 2", step, len(got))
			}
			if _, err := loader(w).LoadAll(ctx, load.Filter{}); err != nil {
				t.Fatal(err)
			}
			got := sfState(t, w, db)
			if len(got) != len(want) {
				t.Fatalf("after the re-run %d files, want %d", len(got), len(want))
			}
			for k, v := range want {
				if got[k] != v {
					t.Fatalf("%s: %q, want %q", k, got[k], v)
				}
			}
		})
	}

	t.Run("corrupt file refused before COPY", func(t *testing.T) {
		w, db := open()
		bad := f.files[2]
		b := append([]byte{}, bad.Data...)
		b[len(b)/2] ^= 0x0f
		if err := os.WriteFile(bad.Path, b, 0o644); err != nil {
			t.Fatal(err)
		}
		defer os.WriteFile(bad.Path, bad.Data, 0o644)
		_, err := loader(w).LoadAll(ctx, load.Filter{})
		if !errors.Is(err, load.ErrInconsistent) {
			t.Fatalf("corrupt file: %v, want ErrInconsistent", err)
		}
		got := sfState(t, w, db)
		if _, ok := got[bad.Manifest.DataKey]; ok || len(got) != len(want)-1 {
			t.Fatalf("after refusing %s: %d files", bad.Manifest.DataKey, len(got))
		}
	})
}

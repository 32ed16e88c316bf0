// Package warehousetest is the contract test of warehouse.Warehouse (and
// warehouse.Checker), run against every backend: Run(t, open).
package warehousetest

import (
	"context"
	"errors"
	"os"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/shopsphere/shardflow/internal/landing"
	"github.com/shopsphere/shardflow/internal/registry"
	"github.com/shopsphere/shardflow/internal/warehouse"
	"github.com/shopsphere/shardflow/internal/window"
)

// Open returns a new, empty warehouse whose backend can read data files under lake (the
// object-store root that File.Path and the data keys are relative to). The warehouse is
// closed by the contract test.
type Open func(t *testing.T, lake string) warehouse.Warehouse

// T0 is the first window the contract test lands.
var T0 = time.Date(2026, 3, 10, 10, 0, 0, 0, time.UTC)

type env struct {
	t    *testing.T
	ctx  context.Context
	lake string
	w    warehouse.Warehouse
}

func setup(t *testing.T, open Open) *env {
	t.Helper()
	lake := t.TempDir()
	w := open(t, lake)
	t.Cleanup(func() { w.Close() })
	e := &env{t: t, ctx: context.Background(), lake: lake, w: w}
	if err := w.Ensure(e.ctx, []registry.Table{Orders}); err != nil {
		t.Fatalf("ensure: %v", err)
	}
	return e
}

func (e *env) write(shard string, t0 time.Time, rows []Row) *File {
	e.t.Helper()
	f, err := WriteBatch(e.lake, shard, t0, rows)
	if err != nil {
		e.t.Fatal(err)
	}
	return f
}

func (e *env) load(f *File) (warehouse.LoadResult, error) {
	return e.w.LoadFile(e.ctx, warehouse.File{Table: Orders, Manifest: f.Manifest, Path: f.Path})
}

func (e *env) mustLoad(f *File) warehouse.LoadResult {
	e.t.Helper()
	res, err := e.load(f)
	if err != nil {
		e.t.Fatalf("load %s: %v", f.Manifest.DataKey, err)
	}
	return res
}

// checker returns the warehouse's Checker; every backend implements it.
func (e *env) checker() warehouse.Checker {
	e.t.Helper()
	c, ok := e.w.(warehouse.Checker)
	if !ok {
		e.t.Fatalf("%T does not implement warehouse.Checker", e.w)
	}
	return c
}

// wantFile checks that the rows under f's key match f's manifest by count and checksum.
func (e *env) wantFile(f *File) {
	e.t.Helper()
	n, s, err := e.checker().FileChecksum(e.ctx, Orders, f.Manifest.DataKey)
	if err != nil {
		e.t.Fatal(err)
	}
	if n != f.Manifest.Rows || s != f.Manifest.Checksum {
		e.t.Fatalf("%s: warehouse has %d rows checksum %s, manifest %d rows checksum %s", f.Manifest.DataKey, n, s, f.Manifest.Rows, f.Manifest.Checksum)
	}
}

// wantWindow checks the window checksum of (shard, [t0, t0+1h)) against want.
func (e *env) wantWindow(shard string, t0 time.Time, rows int64, sum string) {
	e.t.Helper()
	n, s, err := e.checker().WindowChecksum(e.ctx, Orders, shard, window.Window{Start: t0, End: t0.Add(time.Hour)})
	if err != nil {
		e.t.Fatal(err)
	}
	if n != rows || s != sum {
		e.t.Fatalf("window %s %s: warehouse has %d rows checksum %s, want %d rows checksum %s", shard, t0.Format(time.RFC3339), n, s, rows, sum)
	}
}

func (e *env) history(f warehouse.HistoryFilter) []warehouse.HistoryEntry {
	e.t.Helper()
	h, err := e.w.History(e.ctx, f)
	if err != nil {
		e.t.Fatal(err)
	}
	return h
}

// Failpointer is implemented by backends that can stop a load inside its transaction
// (tests only): the contract then dies at every step and checks that nothing of the
// file stays and that the same warehouse handle keeps working.
type Failpointer interface {
	FailpointSteps() []string
	SetFailpoint(func(step string) error)
}

// Run runs the contract of docs/contracts.md §6 against one backend.
func Run(t *testing.T, open Open) {
	t.Run("LoadCountChecksumHistory", func(t *testing.T) {
		e := setup(t, open)
		if err := e.w.Ensure(e.ctx, []registry.Table{Orders}); err != nil {
			t.Fatalf("second ensure: %v", err)
		}
		f := e.write("s00", T0, Rows("a", 25, T0))
		res := e.mustLoad(f)
		if res.Skipped || res.Replaced || res.Rows != 25 {
			t.Fatalf("first load: %+v, want 25 rows, not skipped, not replaced", res)
		}
		e.wantFile(f)
		e.wantWindow("s00", T0, 25, f.Manifest.Checksum)
		e.wantWindow("s01", T0, 0, "0")
		h := e.history(warehouse.HistoryFilter{})
		if len(h) != 1 {
			t.Fatalf("history has %d entries, want 1", len(h))
		}
		got := h[0]
		rowsAt, err := e.checker().FileLoadedAt(e.ctx, Orders, f.Manifest.DataKey)
		if err != nil {
			t.Fatal(err)
		}
		if !rowsAt.Equal(got.LoadedAt) {
			t.Fatalf("history loaded_at %s, rows' _loaded_at %s: want equal (finance marks rely on it)", got.LoadedAt, rowsAt)
		}
		m := f.Manifest
		if got.FileKey != m.DataKey || got.Table != "orders" || got.Shard != "s00" || got.Source != "batch" ||
			got.Rows != 25 || got.Checksum != m.Checksum || got.DataSHA256 != m.DataSHA256 || got.LoadedAt.IsZero() {
			t.Fatalf("history entry %+v does not match the manifest", got)
		}
	})

	t.Run("ReloadSameSHAIsSkipped", func(t *testing.T) {
		e := setup(t, open)
		f := e.write("s00", T0, Rows("a", 10, T0))
		e.mustLoad(f)
		for i := 0; i < 2; i++ {
			res := e.mustLoad(f)
			if !res.Skipped || res.Rows != 0 {
				t.Fatalf("reload %d: %+v, want skipped", i, res)
			}
		}
		e.wantFile(f)
		e.wantWindow("s00", T0, 10, f.Manifest.Checksum)
		if h := e.history(warehouse.HistoryFilter{}); len(h) != 1 {
			t.Fatalf("history has %d entries, want 1", len(h))
		}
	})

	t.Run("RetiredLineageColumnIsNotLoaded", func(t *testing.T) {
		// a file landed before _extracted_at moved to the manifest still loads, and
		// the column lands nowhere
		e := setup(t, open)
		f, err := WriteRetiredBatch(e.lake, "s00", T0, Rows("a", 6, T0))
		if err != nil {
			t.Fatal(err)
		}
		if res := e.mustLoad(f); res.Rows != 6 {
			t.Fatalf("load of a file with a retired column: %+v, want 6 rows", res)
		}
		e.wantFile(f)
		e.wantWindow("s00", T0, 6, f.Manifest.Checksum)
	})

	t.Run("DeclaredColumnIsAdded", func(t *testing.T) {
		// a column declared after the raw table was created is added by the next
		// Ensure (again: a no-op), and files landed without it still load
		e := setup(t, open)
		old := e.write("s00", T0, Rows("a", 4, T0))
		e.mustLoad(old)
		plus := Orders
		plus.Columns = append(append([]registry.Column(nil), Orders.Columns...), registry.Column{Name: "gift_note", Type: "text", Adding: true})
		for i := 0; i < 2; i++ {
			if err := e.w.Ensure(e.ctx, []registry.Table{plus}); err != nil {
				t.Fatalf("ensure %d with a new column: %v", i+1, err)
			}
		}
		cols, err := e.checker().StringColumns(e.ctx)
		if err != nil {
			t.Fatal(err)
		}
		if !slices.Contains(cols["orders"], "gift_note") {
			t.Fatalf("raw orders string columns %v lack the declared gift_note", cols["orders"])
		}
		f := e.write("s00", T0.Add(time.Hour), Rows("b", 3, T0.Add(time.Hour)))
		if _, err := e.w.LoadFile(e.ctx, warehouse.File{Table: plus, Manifest: f.Manifest, Path: f.Path}); err != nil {
			t.Fatalf("a file without the new column into the altered table: %v", err)
		}
		e.wantFile(old)
		e.wantWindow("s00", T0.Add(time.Hour), 3, f.Manifest.Checksum)
	})

	t.Run("ChangedSHAReplacesTheFilesRows", func(t *testing.T) {
		e := setup(t, open)
		other := e.write("s00", T0.Add(time.Hour), Rows("b", 7, T0.Add(time.Hour)))
		e.mustLoad(other)
		first := e.write("s00", T0, Rows("a", 12, T0))
		e.mustLoad(first)
		// re-extracted window: fewer rows, one of them at a new version
		rows := Rows("a", 9, T0)
		rows[3].RowVersion = 2
		rows[3].Status = "shipped"
		second := e.write("s00", T0, rows)
		if second.Manifest.DataKey != first.Manifest.DataKey || second.Manifest.DataSHA256 == first.Manifest.DataSHA256 {
			t.Fatal("test setup: want the same key with another sha")
		}
		res := e.mustLoad(second)
		if !res.Replaced || res.Skipped || res.Rows != 9 {
			t.Fatalf("reload with another sha: %+v, want replaced, 9 rows", res)
		}
		e.wantFile(second)
		e.wantWindow("s00", T0, 9, second.Manifest.Checksum)
		e.wantFile(other)
		h := e.history(warehouse.HistoryFilter{})
		if len(h) != 2 {
			t.Fatalf("history has %d entries, want 2", len(h))
		}
		for _, x := range h {
			if x.FileKey == second.Manifest.DataKey && (x.DataSHA256 != second.Manifest.DataSHA256 || x.Rows != 9) {
				t.Fatalf("history entry %+v, want the new sha and 9 rows", x)
			}
		}
		if n, keys, err := e.checker().DuplicateKeys(e.ctx, Orders, 10); err != nil || n != 0 {
			t.Fatalf("duplicate keys after replace: %d %v %v, want none", n, keys, err)
		}
	})

	t.Run("ManifestMismatchChangesNothing", func(t *testing.T) {
		e := setup(t, open)
		good := e.write("s00", T0, Rows("a", 5, T0))
		e.mustLoad(good)
		// a new file whose manifest over-counts, and a replacement whose checksum is off
		bad := e.write("s00", T0.Add(time.Hour), Rows("b", 4, T0.Add(time.Hour)))
		bad.Manifest.Rows = 5
		if _, err := e.load(bad); !errors.Is(err, warehouse.ErrMismatch) {
			t.Fatalf("load with rows 5 in the manifest and 4 in the file: %v, want ErrMismatch", err)
		}
		e.wantWindow("s00", T0.Add(time.Hour), 0, "0")
		repl := e.write("s00", T0, Rows("c", 6, T0))
		repl.Manifest.Checksum = "1"
		if _, err := e.load(repl); !errors.Is(err, warehouse.ErrMismatch) {
			t.Fatalf("load with a wrong checksum: %v, want ErrMismatch", err)
		}
		e.wantFile(good) // the old rows survive a failed replace
		h := e.history(warehouse.HistoryFilter{})
		if len(h) != 1 || h[0].DataSHA256 != good.Manifest.DataSHA256 {
			t.Fatalf("history after failed loads: %+v, want only the good file", h)
		}
	})

	t.Run("EmptyFile", func(t *testing.T) {
		e := setup(t, open)
		f := e.write("s01", T0, nil)
		if f.Manifest.Rows != 0 || f.Manifest.Checksum != "0" {
			t.Fatalf("empty manifest: rows %d checksum %s", f.Manifest.Rows, f.Manifest.Checksum)
		}
		res := e.mustLoad(f)
		if res.Skipped || res.Rows != 0 {
			t.Fatalf("empty file: %+v", res)
		}
		if res := e.mustLoad(f); !res.Skipped {
			t.Fatalf("empty file reloaded: %+v, want skipped", res)
		}
		h := e.history(warehouse.HistoryFilter{Shard: "s01"})
		if len(h) != 1 || h[0].Rows != 0 {
			t.Fatalf("history of an empty file: %+v, want one entry with 0 rows (loaded, nothing happened)", h)
		}
		e.wantWindow("s01", T0, 0, "0")
	})

	t.Run("ConcurrentDoubleLoad", func(t *testing.T) {
		e := setup(t, open)
		f := e.write("s02", T0, Rows("a", 40, T0))
		const n = 4
		var wg sync.WaitGroup
		results := make([]warehouse.LoadResult, n)
		errs := make([]error, n)
		for i := 0; i < n; i++ {
			wg.Add(1)
			go func(i int) {
				defer wg.Done()
				results[i], errs[i] = e.load(f)
			}(i)
		}
		wg.Wait()
		loaded := 0
		for i := range results {
			switch {
			case errs[i] != nil && errors.Is(errs[i], warehouse.ErrConflict):
				// retryable by contract; the rows must still be there once
			case errs[i] != nil:
				t.Fatalf("concurrent load %d: %v", i, errs[i])
			case !results[i].Skipped:
				loaded++
			}
		}
		if loaded < 1 {
			t.Fatalf("concurrent loads: %+v %v, want at least one load", results, errs)
		}
		e.wantFile(f)
		e.wantWindow("s02", T0, 40, f.Manifest.Checksum)
		if h := e.history(warehouse.HistoryFilter{}); len(h) != 1 {
			t.Fatalf("history has %d entries, want 1", len(h))
		}
	})

	t.Run("NullsAndHistoryFilter", func(t *testing.T) {
		e := setup(t, open)
		rows := Rows("a", 3, T0)
		rows[1].Total = nil
		a := e.write("s00", T0, rows)
		b := e.write("s01", T0, Rows("b", 2, T0))
		e.mustLoad(a)
		e.mustLoad(b)
		e.wantFile(a)
		if h := e.history(warehouse.HistoryFilter{Table: "orders", Shard: "s01"}); len(h) != 1 || h[0].FileKey != b.Manifest.DataKey {
			t.Fatalf("history of s01: %+v", h)
		}
		if h := e.history(warehouse.HistoryFilter{Key: a.Manifest.DataKey}); len(h) != 1 || h[0].Shard != "s00" {
			t.Fatalf("history of one key: %+v", h)
		}
		if h := e.history(warehouse.HistoryFilter{Table: "payments"}); len(h) != 0 {
			t.Fatalf("history of payments: %+v, want none", h)
		}
		// a prefix selects by key start, with the key's '_' and '/' taken literally
		if h := e.history(warehouse.HistoryFilter{Prefixes: []string{landing.ShardPrefix("orders", landing.Batch, "s01")}}); len(h) != 1 || h[0].FileKey != b.Manifest.DataKey {
			t.Fatalf("history under s01's prefix: %+v", h)
		}
		if h := e.history(warehouse.HistoryFilter{Prefixes: []string{"landing/orders/source=batch/shard=s0_/"}}); len(h) != 0 {
			t.Fatalf("history under a prefix with '_': %+v, want none (not a LIKE pattern)", h)
		}
		both := []string{landing.ShardPrefix("orders", landing.Batch, "s00"), landing.ShardPrefix("orders", landing.Batch, "s01")}
		if h := e.history(warehouse.HistoryFilter{Prefixes: both}); len(h) != 2 || h[0].FileKey != a.Manifest.DataKey || h[1].FileKey != b.Manifest.DataKey {
			t.Fatalf("history under s00's and s01's prefixes: %+v, want both keys in key order", h)
		}
		cols, err := e.checker().StringColumns(e.ctx)
		if err != nil {
			t.Fatal(err)
		}
		want := map[string]bool{"order_id": false, "status": false, landing.ColShard: false, warehouse.ColFile: false}
		for _, c := range cols["orders"] {
			if _, ok := want[c]; ok {
				want[c] = true
			}
			if c == "total_cents" || c == "row_version" {
				t.Fatalf("string columns of orders include %s: %v", c, cols["orders"])
			}
		}
		for c, ok := range want {
			if !ok {
				t.Fatalf("string columns of orders %v lack %s", cols["orders"], c)
			}
		}
		if _, ok := cols[warehouse.HistoryTable]; ok {
			t.Fatalf("string columns include the load history: %v", cols)
		}
	})

	t.Run("CancelledInsideTheTransaction", func(t *testing.T) {
		e := setup(t, open)
		fp, ok := e.w.(Failpointer)
		if !ok {
			t.Skipf("%T cannot stop inside a load", e.w)
		}
		done := e.write("s00", T0, Rows("a", 6, T0))
		e.mustLoad(done)
		for i, step := range fp.FailpointSteps() {
			t0 := T0.Add(time.Duration(i+1) * time.Hour)
			f := e.write("s00", t0, Rows(step, 8, t0))
			// a replace of the loaded file dies too
			repl := e.write("s00", T0, Rows("a2-"+step, 4, T0))
			for _, x := range []*File{f, repl} {
				ctx, cancel := context.WithCancel(e.ctx)
				fp.SetFailpoint(func(s string) error {
					if s == step {
						cancel()
						return errors.New("simulated crash at " + s)
					}
					return nil
				})
				if _, err := e.w.LoadFile(ctx, warehouse.File{Table: Orders, Manifest: x.Manifest, Path: x.Path}); err == nil {
					t.Fatalf("load cancelled at %s succeeded", step)
				}
				cancel()
				fp.SetFailpoint(nil)
			}
			// the same handle: nothing of f, the old rows of the replaced key, and it loads
			e.wantWindow("s00", t0, 0, "0")
			if err := os.WriteFile(done.Path, done.Data, 0o644); err != nil {
				t.Fatal(err)
			}
			e.wantFile(done)
			if h := e.history(warehouse.HistoryFilter{}); len(h) != i+1 {
				t.Fatalf("after dying at %s: %d history entries, want %d", step, len(h), i+1)
			}
			e.mustLoad(f)
			e.wantFile(f)
			e.wantFile(done) // a session left inside the dead transaction would have committed it now
			if h := e.history(warehouse.HistoryFilter{}); len(h) != i+2 {
				t.Fatalf("after dying at %s and loading the next file: %d history entries, want %d", step, len(h), i+2)
			}
		}
	})

	t.Run("DuplicateKeysAcrossFiles", func(t *testing.T) {
		e := setup(t, open)
		rows := Rows("a", 5, T0)
		e.mustLoad(e.write("s00", T0, rows))
		// the next window of the same shard carries one of the same (key, version) pairs:
		// an exactly-once violation dq must see
		next := Rows("b", 3, T0.Add(time.Hour))
		next[0] = rows[2]
		next[0].UpdatedAt = T0.Add(time.Hour)
		e.mustLoad(e.write("s00", T0.Add(time.Hour), next))
		n, keys, err := e.checker().DuplicateKeys(e.ctx, Orders, 10)
		if err != nil {
			t.Fatal(err)
		}
		if n != 1 || len(keys) != 1 {
			t.Fatalf("duplicate keys: %d %v, want 1", n, keys)
		}
	})
}

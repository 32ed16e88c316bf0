package load_test

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/shopsphere/shardflow/internal/exitcode"
	"github.com/shopsphere/shardflow/internal/landing"
	"github.com/shopsphere/shardflow/internal/load"
	"github.com/shopsphere/shardflow/internal/objstore/dir"
	"github.com/shopsphere/shardflow/internal/registry"
	"github.com/shopsphere/shardflow/internal/warehouse"
	"github.com/shopsphere/shardflow/internal/warehouse/duckdb"
	"github.com/shopsphere/shardflow/internal/warehouse/warehousetest"
	"github.com/shopsphere/shardflow/internal/window"
)

// dirStore is the directory store seen as a remote one (List and Get only, no
// LocalPath), so the copy-to-temp path runs; localDir reads files in place.
type dirStore struct{ Dir dir.Store }

func (d dirStore) List(ctx context.Context, prefix string) ([]string, error) {
	return d.Dir.List(ctx, prefix)
}

func (d dirStore) Get(ctx context.Context, key string) (io.ReadCloser, error) {
	return d.Dir.Get(ctx, key)
}

type localDir struct{ dirStore }

func (d localDir) LocalPath(key string) (string, error) {
	return filepath.Join(d.Dir.Root, filepath.FromSlash(key)), nil
}

var _ load.LocalStore = localDir{}

func TestStoresOfTheTests(t *testing.T) {
	if _, ok := any(dirStore{}).(load.LocalStore); ok {
		t.Fatal("dirStore must not be a LocalStore: the copy path would go untested")
	}
}

func registryOf(t *testing.T) *registry.Registry {
	t.Helper()
	return &registry.Registry{Tables: []registry.Table{warehousetest.Orders}}
}

type fixture struct {
	t     *testing.T
	ctx   context.Context
	lake  string
	files []*warehousetest.File
}

// newFixture lands 3 windows on 2 shards plus an empty window and a data file without
// its manifest (not landed: load must ignore it).
func newFixture(t *testing.T) *fixture {
	f := &fixture{t: t, ctx: context.Background(), lake: t.TempDir()}
	for _, sh := range []string{"s00", "s01"} {
		for i := 0; i < 3; i++ {
			t0 := warehousetest.T0.Add(time.Duration(i) * time.Hour)
			f.files = append(f.files, f.write(sh, t0, warehousetest.Rows(fmt.Sprintf("%s-%d", sh, i), 20+5*i, t0)))
		}
	}
	f.files = append(f.files, f.write("s01", warehousetest.T0.Add(3*time.Hour), nil))
	orphan := f.write("s00", warehousetest.T0.Add(5*time.Hour), warehousetest.Rows("orphan", 3, warehousetest.T0.Add(5*time.Hour)))
	if err := os.Remove(filepath.Join(f.lake, landing.ManifestKey(orphan.Manifest.DataKey))); err != nil {
		t.Fatal(err)
	}
	return f
}

func (f *fixture) write(shard string, t0 time.Time, rows []warehousetest.Row) *warehousetest.File {
	f.t.Helper()
	x, err := warehousetest.WriteBatch(f.lake, shard, t0, rows)
	if err != nil {
		f.t.Fatal(err)
	}
	return x
}

func (f *fixture) warehouse(path string) *duckdb.Warehouse {
	f.t.Helper()
	w, err := duckdb.Open(f.ctx, path)
	if err != nil {
		f.t.Fatal(err)
	}
	if err := w.Ensure(f.ctx, []registry.Table{warehousetest.Orders}); err != nil {
		f.t.Fatal(err)
	}
	return w
}

func (f *fixture) loader(w warehouse.Warehouse, local bool) *load.Loader {
	var st load.Store = dirStore{Dir: dir.Store{Root: f.lake}}
	if local {
		st = localDir{dirStore{Dir: dir.Store{Root: f.lake}}}
	}
	return &load.Loader{Store: st, Warehouse: w, Registry: registryOf(f.t), TempDir: f.t.TempDir()}
}

// state is what the warehouse holds: per loaded key, its history entry and the count and
// checksum of its rows; plus rows whose key has no history entry, and duplicates.
type state struct {
	files    map[string]string // key → "rows checksum sha"
	orphans  int64             // rows whose _file is not in the history
	total    int64
	dups     int64
	mismatch []string // keys whose rows differ from their history entry
}

func (f *fixture) state(w *duckdb.Warehouse) state {
	f.t.Helper()
	h, err := w.History(f.ctx, warehouse.HistoryFilter{})
	if err != nil {
		f.t.Fatal(err)
	}
	s := state{files: map[string]string{}}
	for _, e := range h {
		n, sum, err := w.FileChecksum(f.ctx, warehousetest.Orders, e.FileKey)
		if err != nil {
			f.t.Fatal(err)
		}
		if n != e.Rows || sum != e.Checksum {
			s.mismatch = append(s.mismatch, e.FileKey)
		}
		s.files[e.FileKey] = fmt.Sprintf("%d %s %s", n, sum, e.DataSHA256)
	}
	db := w.DB()
	if err := db.QueryRowContext(f.ctx, "SELECT count(*) FROM raw.orders WHERE _file NOT IN (SELECT file_key FROM raw._load_history)").Scan(&s.orphans); err != nil {
		f.t.Fatal(err)
	}
	if err := db.QueryRowContext(f.ctx, "SELECT count(*) FROM raw.orders").Scan(&s.total); err != nil {
		f.t.Fatal(err)
	}
	if err := db.QueryRowContext(f.ctx, "SELECT count(*) FROM (SELECT order_id, row_version FROM raw.orders GROUP BY 1, 2 HAVING count(*) > 1)").Scan(&s.dups); err != nil {
		f.t.Fatal(err)
	}
	return s
}

func (f *fixture) wantConsistent(s state, when string) {
	f.t.Helper()
	if s.orphans != 0 || s.dups != 0 || len(s.mismatch) != 0 {
		f.t.Fatalf("%s: %d rows without a history entry, %d duplicate (key, version), files whose rows differ from history: %v", when, s.orphans, s.dups, s.mismatch)
	}
}

func (f *fixture) wantEqual(got, want state, when string) {
	f.t.Helper()
	f.wantConsistent(got, when)
	if got.total != want.total || len(got.files) != len(want.files) {
		f.t.Fatalf("%s: %d rows in %d files, want %d rows in %d files", when, got.total, len(got.files), want.total, len(want.files))
	}
	for k, v := range want.files {
		if got.files[k] != v {
			f.t.Fatalf("%s: %s is %q, want %q", when, k, got.files[k], v)
		}
	}
}

// reference loads everything once, cleanly, into a warehouse of its own.
func (f *fixture) reference() state {
	f.t.Helper()
	w := f.warehouse(filepath.Join(f.t.TempDir(), "ref.duckdb"))
	defer w.Close()
	sums, err := f.loader(w, true).LoadAll(f.ctx, load.Filter{})
	if err != nil {
		f.t.Fatal(err)
	}
	files := 0
	for _, s := range sums {
		files += s.Loaded
	}
	if files != len(f.files) {
		f.t.Fatalf("reference load: %d files loaded, want %d (the orphan data file must be ignored): %+v", files, len(f.files), sums)
	}
	st := f.state(w)
	f.wantConsistent(st, "reference")
	return st
}

var errCrash = errors.New("simulated crash")

// TestKillAndRerun: the load "dies" at every point of a file's load, for the 1st, 3rd
// and last file (cancelling the context, as SIGTERM does, and failing the statement in
// flight); after each death the warehouse holds whole files only, and a re-run ends
// exactly equal to a clean load, with no duplicates.
func TestKillAndRerun(t *testing.T) {
	f := newFixture(t)
	want := f.reference()
	steps := []struct{ where, step string }{
		{"loader", "verified"},
		{"duckdb", duckdb.StepDeleted},
		{"duckdb", duckdb.StepInserted},
		{"duckdb", duckdb.StepVerified},
		{"duckdb", duckdb.StepHistory},
		{"loader", "loaded"},
	}
	for _, local := range []bool{true, false} {
		for _, nth := range []int{1, 3, len(f.files)} {
			for _, sp := range steps {
				name := fmt.Sprintf("local=%v/file%d/%s-%s", local, nth, sp.where, sp.step)
				t.Run(name, func(t *testing.T) {
					path := filepath.Join(t.TempDir(), "w.duckdb")
					w := f.warehouse(path)
					ctx, cancel := context.WithCancel(f.ctx)
					seen := 0
					crash := func(step string) error {
						if step != sp.step {
							return nil
						}
						seen++
						if seen == nth {
							cancel()
							return errCrash
						}
						return nil
					}
					l := f.loader(w, local)
					if sp.where == "loader" {
						l.Failpoint = func(step, _ string) error { return crash(step) }
					} else {
						w.Failpoint = crash
					}
					_, err := l.LoadAll(ctx, load.Filter{})
					if err == nil {
						t.Fatalf("%s: the run did not die", name)
					}
					w.Failpoint = nil
					w.Close()

					// the process is gone; a new one opens the file
					w = f.warehouse(path)
					defer w.Close()
					f.wantConsistent(f.state(w), name+": after the crash")
					sums, err := f.loader(w, local).LoadAll(f.ctx, load.Filter{})
					if err != nil {
						t.Fatalf("%s: re-run: %v", name, err)
					}
					f.wantEqual(f.state(w), want, name+": after the re-run")
					again, err := f.loader(w, local).LoadAll(f.ctx, load.Filter{})
					if err != nil {
						t.Fatal(err)
					}
					for _, s := range again {
						if s.Loaded != 0 || s.Skipped != s.Files {
							t.Fatalf("%s: third run loaded %+v, want everything skipped", name, s)
						}
					}
					_ = sums
				})
			}
		}
	}
}

// TestReplaceCrash: a re-extracted window (same key, new sha) dies in the middle of its
// replace; the old rows stay whole; the re-run replaces them.
func TestReplaceCrash(t *testing.T) {
	f := newFixture(t)
	w := f.warehouse(filepath.Join(t.TempDir(), "w.duckdb"))
	defer w.Close()
	if _, err := f.loader(w, true).LoadAll(f.ctx, load.Filter{}); err != nil {
		t.Fatal(err)
	}
	before := f.state(w)
	old := f.files[1]
	t0 := *old.Manifest.WindowStart
	rows := warehousetest.Rows("s00-1", 11, t0)
	rows[0].RowVersion = 7
	nu := f.write("s00", t0, rows)
	for _, step := range []string{duckdb.StepDeleted, duckdb.StepInserted, duckdb.StepVerified, duckdb.StepHistory} {
		w.Failpoint = func(s string) error {
			if s == step {
				return errCrash
			}
			return nil
		}
		if _, err := f.loader(w, true).LoadWindow(f.ctx, "orders", "s00", window.Window{Start: t0, End: t0.Add(time.Hour)}); !errors.Is(err, errCrash) {
			t.Fatalf("replace dying at %s: %v", step, err)
		}
		f.wantEqual(f.state(w), before, "replace died at "+step)
	}
	w.Failpoint = nil
	sum, err := f.loader(w, true).LoadWindow(f.ctx, "orders", "s00", window.Window{Start: t0, End: t0.Add(time.Hour)})
	if err != nil {
		t.Fatal(err)
	}
	if sum.Replaced != 1 || sum.Rows != 11 {
		t.Fatalf("replace: %+v, want 1 replaced with 11 rows", sum)
	}
	after := f.state(w)
	f.wantConsistent(after, "after the replace")
	if got, want := after.files[nu.Manifest.DataKey], fmt.Sprintf("11 %s %s", nu.Manifest.Checksum, nu.Manifest.DataSHA256); got != want {
		t.Fatalf("replaced file: %q, want %q", got, want)
	}
	if after.total != before.total-int64(old.Manifest.Rows)+11 {
		t.Fatalf("after the replace %d rows, want %d", after.total, before.total-old.Manifest.Rows+11)
	}
}

// TestInconsistentFilesAreRefused: a data file whose bytes differ from its manifest, a
// manifest whose rows are wrong, and a manifest without its data file are refused with
// exit code 1, load nothing of theirs, and do not stop the other shards' files.
func TestInconsistentFilesAreRefused(t *testing.T) {
	for _, tc := range []struct {
		name  string
		spoil func(f *fixture, x *warehousetest.File)
		want  string
	}{
		{"data bytes changed", func(f *fixture, x *warehousetest.File) {
			b := append([]byte{}, x.Data...)
			b[len(b)/2] ^= 0xff
			os.WriteFile(x.Path, b, 0o644)
		}, "sha256"},
		{"data truncated", func(f *fixture, x *warehousetest.File) { os.WriteFile(x.Path, x.Data[:len(x.Data)-10], 0o644) }, "bytes"},
		{"manifest rows wrong", func(f *fixture, x *warehousetest.File) {
			x.Manifest.Rows++
			b, _ := x.Manifest.Marshal()
			os.WriteFile(filepath.Join(f.lake, landing.ManifestKey(x.Manifest.DataKey)), b, 0o644)
		}, "differ from the manifest"},
		{"data file missing", func(f *fixture, x *warehousetest.File) { os.Remove(x.Path) }, "data file does not"},
	} {
		for _, local := range []bool{true, false} {
			t.Run(fmt.Sprintf("%s/local=%v", tc.name, local), func(t *testing.T) {
				f := newFixture(t)
				bad := f.files[1] // s00
				tc.spoil(f, bad)
				w := f.warehouse(filepath.Join(t.TempDir(), "w.duckdb"))
				defer w.Close()
				sums, err := f.loader(w, local).LoadAll(f.ctx, load.Filter{})
				if err == nil || exitcode.Of(err) != exitcode.Permanent || !errors.Is(err, load.ErrInconsistent) || !strings.Contains(err.Error(), tc.want) {
					t.Fatalf("err %v (exit %d), want exit 1, ErrInconsistent, %q", err, exitcode.Of(err), tc.want)
				}
				st := f.state(w)
				f.wantConsistent(st, tc.name)
				if _, ok := st.files[bad.Manifest.DataKey]; ok {
					t.Fatalf("%s: the bad file was loaded", tc.name)
				}
				if len(st.files) != len(f.files)-1 {
					t.Fatalf("%s: %d files loaded, want every other file (%d): %+v", tc.name, len(st.files), len(f.files)-1, sums)
				}
			})
		}
	}
}

// TestWindowAndFilters: --shard/--table/window selection and the summaries.
func TestWindowAndFilters(t *testing.T) {
	f := newFixture(t)
	w := f.warehouse(filepath.Join(t.TempDir(), "w.duckdb"))
	defer w.Close()
	l := f.loader(w, false)
	t0 := warehousetest.T0.Add(time.Hour)
	s, err := l.LoadWindow(f.ctx, "orders", "s01", window.Window{Start: t0, End: t0.Add(time.Hour)})
	if err != nil {
		t.Fatal(err)
	}
	if s.Loaded != 1 || s.Rows != 25 {
		t.Fatalf("window: %+v, want 1 file of 25 rows", s)
	}
	if _, err := l.LoadWindow(f.ctx, "orders", "s01", window.Window{Start: t0.Add(9 * time.Hour), End: t0.Add(10 * time.Hour)}); !errors.Is(err, load.ErrNotLanded) || exitcode.Of(err) != exitcode.Retryable {
		t.Fatalf("window not landed: %v (exit %d), want ErrNotLanded, exit 75", err, exitcode.Of(err))
	}
	sums, err := l.LoadAll(f.ctx, load.Filter{Table: "orders", Shard: "s01"})
	if err != nil {
		t.Fatal(err)
	}
	if len(sums) != 1 || sums[0].Shard != "s01" || sums[0].Files != 4 || sums[0].Loaded != 3 || sums[0].Skipped != 1 || sums[0].Rows != 20+30 {
		t.Fatalf("s01: %+v, want 4 files: 3 loaded (50 rows), 1 skipped", sums)
	}
	sums, err = l.LoadAll(f.ctx, load.Filter{})
	if err != nil {
		t.Fatal(err)
	}
	if len(sums) != 2 || sums[0].Shard != "s00" || sums[0].Loaded != 3 || sums[1].Skipped != 4 {
		t.Fatalf("all: %+v", sums)
	}
}

// TestUnreachableStoreIsRetryable: a store that fails to list or read exits 75.
func TestUnreachableStoreIsRetryable(t *testing.T) {
	f := newFixture(t)
	w := f.warehouse(filepath.Join(t.TempDir(), "w.duckdb"))
	defer w.Close()
	l := &load.Loader{Store: downStore{}, Warehouse: w, Registry: registryOf(t)}
	if _, err := l.LoadAll(f.ctx, load.Filter{}); exitcode.Of(err) != exitcode.Retryable {
		t.Fatalf("list failing: %v (exit %d), want 75", err, exitcode.Of(err))
	}
	if _, err := l.LoadWindow(f.ctx, "orders", "s00", window.Window{Start: warehousetest.T0, End: warehousetest.T0.Add(time.Hour)}); exitcode.Of(err) != exitcode.Retryable {
		t.Fatalf("get failing: %v (exit %d), want 75", err, exitcode.Of(err))
	}
}

type downStore struct{}

func (downStore) List(context.Context, string) ([]string, error) {
	return nil, errors.New("dial tcp 127.0.0.1:1: connection refused")
}
func (downStore) Get(context.Context, string) (io.ReadCloser, error) {
	return nil, errors.New("dial tcp 127.0.0.1:1: connection refused")
}

// TestSince: with a source and Since, only the dt= partitions from Since's day on are
// listed (and their history read); a full run then loads what lay before.
func TestSince(t *testing.T) {
	f := newFixture(t)
	day2 := warehousetest.T0.Truncate(24 * time.Hour).Add(24*time.Hour + 2*time.Hour)
	late := f.write("s01", day2, warehousetest.Rows("late", 7, day2))
	w := f.warehouse(filepath.Join(t.TempDir(), "w.duckdb"))
	defer w.Close()
	l := f.loader(w, true)
	l.Registry = &registry.Registry{Tables: []registry.Table{warehousetest.Orders}, Shards: []registry.Shard{{ID: "s00"}, {ID: "s01"}}}
	sums, err := l.LoadAll(f.ctx, load.Filter{Source: landing.Batch, Since: day2, Until: day2.Add(time.Hour)})
	if err != nil {
		t.Fatal(err)
	}
	if len(sums) != 1 || sums[0].Shard != "s01" || sums[0].Loaded != 1 || sums[0].Rows != 7 {
		t.Fatalf("since %s: %+v, want the one file of that day", day2, sums)
	}
	if h, _ := w.History(f.ctx, warehouse.HistoryFilter{}); len(h) != 1 || h[0].FileKey != late.Manifest.DataKey {
		t.Fatalf("history after the since run: %+v", h)
	}
	if sums, err := l.LoadAll(f.ctx, load.Filter{Source: landing.CDC, Since: warehousetest.T0}); err != nil || len(sums) != 0 {
		t.Fatalf("cdc since T0: %+v %v, want nothing", sums, err)
	}
	sums, err = l.LoadAll(f.ctx, load.Filter{})
	if err != nil {
		t.Fatal(err)
	}
	loaded, skipped := 0, 0
	for _, s := range sums {
		loaded += s.Loaded
		skipped += s.Skipped
	}
	if loaded != 7 || skipped != 1 { // the 6 windows and the empty one of newFixture; the late file was loaded
		t.Fatalf("full run after: %+v", sums)
	}
}

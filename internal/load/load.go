// Package load is the logic of the load task: it finds landed files by their manifests,
// checks each data file against its manifest (size and sha256) before anything reaches
// the warehouse, and hands it to a warehouse.Warehouse, whose per-file transaction makes
// the load idempotent (docs/contracts.md §6, docs/warehouse.md).
package load

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"log/slog"
	"net"
	"os"
	"sort"
	"strings"
	"time"

	"github.com/shopsphere/shardflow/internal/exitcode"
	"github.com/shopsphere/shardflow/internal/landing"
	"github.com/shopsphere/shardflow/internal/objstore"
	"github.com/shopsphere/shardflow/internal/registry"
	"github.com/shopsphere/shardflow/internal/warehouse"
	"github.com/shopsphere/shardflow/internal/window"
)

// Store is what load needs of the object store: keys are relative to the landing root.
// Get of an absent key returns an error wrapping fs.ErrNotExist.
type Store interface {
	List(ctx context.Context, prefix string) ([]string, error)
	Get(ctx context.Context, key string) (io.ReadCloser, error)
}

// LocalStore is implemented by stores whose objects are local files (the directory
// store): load hashes and loads them in place instead of copying them.
type LocalStore interface {
	LocalPath(key string) (string, error)
}

// ErrInconsistent marks a landed file that disagrees with its manifest (size, sha256,
// data key, table, rows or checksum). Nothing of it is loaded; re-running cannot help
// until the window is re-extracted.
var ErrInconsistent = errors.New("landed file inconsistent with its manifest")

// ErrNotLanded marks a window whose manifest is not in the store (yet).
var ErrNotLanded = errors.New("not landed")

// Loader loads landed files into a warehouse.
type Loader struct {
	Store     Store
	Warehouse warehouse.Warehouse
	Registry  *registry.Registry
	TempDir   string // where remote objects are copied for backends that need a local file ("" = os.TempDir())
	Log       *slog.Logger

	// Failpoint, when set (tests only), is called with a step and the data key:
	// "verified" after the data file matched its manifest, before the warehouse load;
	// "loaded" after the warehouse committed it. An error stops the run there.
	Failpoint func(step, key string) error
}

// Filter selects files; empty fields match everything.
type Filter struct {
	Table  string
	Shard  string
	Source landing.Source // batch or cdc
	// Since, when set, lists only the dt= partitions from Since's UTC day to Until's
	// (default: now): the micro-batch's listing then costs a few days of keys, not the
	// lake's whole history. A file dated before Since is not seen: a full run (no Since)
	// catches up after a backlog longer than the window.
	Since, Until time.Time
}

// Summary counts one shard's files in a run.
type Summary struct {
	Shard    string
	Files    int   // manifests considered
	Loaded   int   // files loaded (new or replaced)
	Replaced int   // of which replaced an older version of the key
	Skipped  int   // files already loaded with the same sha
	Failed   int   // files that failed
	Rows     int64 // rows written
	// CommitLast is the latest commit time (manifest commit_last) among the shard's CDC
	// files that are in the warehouse after the run, loaded now or before.
	CommitLast time.Time
}

func (l *Loader) log() *slog.Logger {
	if l.Log != nil {
		return l.Log
	}
	return slog.New(slog.NewTextHandler(io.Discard, nil))
}

// LoadWindow loads the batch file of one window of table on shard.
func (l *Loader) LoadWindow(ctx context.Context, table, shard string, w window.Window) (Summary, error) {
	sum := Summary{Shard: shard}
	key := landing.ManifestKey(landing.BatchKey(table, shard, w.Start, w.End))
	known, err := l.known(ctx, warehouse.HistoryFilter{Key: landing.DataKeyOf(key)})
	if err != nil {
		return sum, err
	}
	err = l.loadOne(ctx, key, known, &sum)
	return sum, err
}

// LoadAll loads every landed file that matches f and is not loaded with the same sha, in
// key order. A failing file does not stop the others (shard isolation); the error
// returned joins every failure, with the exit code of the worst (exitcode.Worst: a
// permanent failure over a retryable one).
func (l *Loader) LoadAll(ctx context.Context, f Filter) ([]Summary, error) {
	var keys, landed []string
	for _, prefix := range l.prefixes(f) {
		k, err := l.Store.List(ctx, prefix)
		if err != nil {
			return nil, objstore.Classify(fmt.Errorf("list %s: %w", prefix, err))
		}
		keys = append(keys, k...)
		if len(k) > 0 {
			landed = append(landed, prefix)
		}
	}
	known := map[string]string{}
	if len(landed) > 0 { // one history query for every prefix that holds files
		var err error
		if known, err = l.known(ctx, warehouse.HistoryFilter{Table: f.Table, Shard: f.Shard, Prefixes: landed}); err != nil {
			return nil, err
		}
	}
	var manifests []string
	for _, k := range keys {
		if strings.HasSuffix(k, landing.ManifestSuffix) && (f.Shard == "" || shardOf(k) == f.Shard) {
			manifests = append(manifests, k)
		}
	}
	return l.loadManifests(ctx, manifests, known)
}

// LoadKeys loads the landed files with these data keys (a restore's list), each with
// the guarantees of LoadAll, in key order.
func (l *Loader) LoadKeys(ctx context.Context, dataKeys []string) ([]Summary, error) {
	known, err := l.known(ctx, warehouse.HistoryFilter{})
	if err != nil {
		return nil, err
	}
	manifests := make([]string, len(dataKeys))
	for i, k := range dataKeys {
		manifests[i] = landing.ManifestKey(k)
	}
	return l.loadManifests(ctx, manifests, known)
}

// loadManifests loads the files of manifests whose sha is not the one known for their
// key, per shard, going on past a failing file.
func (l *Loader) loadManifests(ctx context.Context, manifests []string, known map[string]string) ([]Summary, error) {
	sort.Strings(manifests)
	byShard := map[string]*Summary{}
	var errs []error
	for _, k := range manifests {
		if err := ctx.Err(); err != nil {
			errs = append(errs, exitcode.Wrap(exitcode.Retryable, err))
			break
		}
		sh := shardOf(k)
		s := byShard[sh]
		if s == nil {
			s = &Summary{Shard: sh}
			byShard[sh] = s
		}
		if err := l.loadOne(ctx, k, known, s); err != nil {
			errs = append(errs, err)
			if l.stopped(err) {
				break
			}
		}
	}
	out := make([]Summary, 0, len(byShard))
	for _, s := range byShard {
		out = append(out, *s)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Shard < out[j].Shard })
	err := exitcode.Join(errs...)
	if len(errs) > 1 {
		err = fmt.Errorf("%d files failed: %w", len(errs), err)
	}
	return out, err
}

// prefixes are the narrowest store prefixes that hold f's files: per table of the
// registry (or f.Table); per source and shard when a source, a shard or Since is given
// (every shard of the registry when f.Shard is empty); and per UTC day with Since.
func (l *Loader) prefixes(f Filter) []string {
	var tables []string
	if f.Table != "" {
		tables = []string{f.Table}
	} else {
		for _, t := range l.Registry.Tables {
			tables = append(tables, t.Name)
		}
	}
	if f.Shard == "" && f.Source == "" && f.Since.IsZero() {
		out := make([]string, 0, len(tables))
		for _, t := range tables {
			out = append(out, landing.TablePrefix(t))
		}
		return out
	}
	sources := []landing.Source{landing.Batch, landing.CDC}
	if f.Source != "" {
		sources = []landing.Source{f.Source}
	}
	shards := []string{f.Shard}
	if f.Shard == "" {
		shards = shards[:0]
		for _, s := range l.Registry.Shards {
			shards = append(shards, s.ID)
		}
	}
	var days []string // nil: every day
	if !f.Since.IsZero() {
		days = []string{}
		until := f.Until
		if until.IsZero() {
			until = time.Now()
		}
		for d := f.Since.UTC().Truncate(24 * time.Hour); !d.After(until.UTC()); d = d.Add(24 * time.Hour) {
			days = append(days, "dt="+d.Format("2006-01-02")+"/")
		}
	}
	var out []string
	for _, t := range tables {
		for _, src := range sources {
			for _, sh := range shards {
				p := landing.ShardPrefix(t, src, sh)
				if days == nil {
					out = append(out, p)
					continue
				}
				for _, d := range days {
					out = append(out, p+d)
				}
			}
		}
	}
	return out
}

// stopped reports whether a run must stop after err (a cancelled context, a failpoint).
func (l *Loader) stopped(err error) bool {
	return errors.Is(err, context.Canceled) || errors.Is(err, context.DeadlineExceeded) || errors.Is(err, errFailpoint)
}

var errFailpoint = errors.New("failpoint")

// shardOf reads the shard id out of a landing key (".../shard=<id>/...").
func shardOf(key string) string {
	_, rest, ok := strings.Cut(key, "/shard=")
	if !ok {
		return ""
	}
	id, _, _ := strings.Cut(rest, "/")
	return id
}

// known is the data_sha256 of every loaded key that matches f.
func (l *Loader) known(ctx context.Context, f warehouse.HistoryFilter) (map[string]string, error) {
	h, err := l.Warehouse.History(ctx, f)
	if err != nil {
		return nil, classify(err)
	}
	out := make(map[string]string, len(h))
	for _, e := range h {
		out[e.FileKey] = e.DataSHA256
	}
	return out, nil
}

// loadOne loads the file of one manifest key and counts it in s.
func (l *Loader) loadOne(ctx context.Context, manifestKey string, known map[string]string, s *Summary) (err error) {
	began := time.Now()
	s.Files++
	attrs := []any{slog.String("shard", s.Shard), slog.String("key", landing.DataKeyOf(manifestKey))}
	defer func() {
		if err != nil {
			s.Failed++
			l.log().Error("load failed", append(attrs, slog.Duration("duration", time.Since(began)), slog.String("error", err.Error()))...)
		}
	}()
	m, t, err := l.manifest(ctx, manifestKey)
	if err != nil {
		return err
	}
	attrs = append(attrs, slog.String("table", m.Table), slog.String("window", windowOf(m)))
	if known[m.DataKey] == m.DataSHA256 {
		s.Skipped++
		s.committed(m)
		l.log().Debug("already loaded", append(attrs, slog.Int64("rows", m.Rows))...)
		return nil
	}
	path, cleanup, err := l.fetch(ctx, m)
	if err != nil {
		return err
	}
	defer cleanup()
	if err := l.fail("verified", m.DataKey); err != nil {
		return err
	}
	res, err := l.Warehouse.LoadFile(ctx, warehouse.File{Table: t, Manifest: m, Path: path})
	if err != nil {
		return classify(err)
	}
	if err := l.fail("loaded", m.DataKey); err != nil {
		return err
	}
	switch {
	case res.Skipped:
		s.Skipped++
	default:
		s.Loaded++
		s.Rows += res.Rows
		if res.Replaced {
			s.Replaced++
		}
	}
	known[m.DataKey] = m.DataSHA256
	s.committed(m)
	l.log().Info("loaded", append(attrs, slog.Int64("rows", res.Rows), slog.Bool("replaced", res.Replaced), slog.Bool("skipped", res.Skipped),
		slog.Duration("duration", time.Since(began)))...)
	return nil
}

// committed notes that m's changes are in the warehouse.
func (s *Summary) committed(m *landing.Manifest) {
	if m.CommitLast != nil && m.CommitLast.After(s.CommitLast) {
		s.CommitLast = *m.CommitLast
	}
}

func (l *Loader) fail(step, key string) error {
	if l.Failpoint == nil {
		return nil
	}
	if err := l.Failpoint(step, key); err != nil {
		return fmt.Errorf("%w %s at %s: %w", errFailpoint, step, key, err)
	}
	return nil
}

func windowOf(m *landing.Manifest) string {
	if m.WindowStart != nil && m.WindowEnd != nil {
		return m.WindowStart.UTC().Format(time.RFC3339) + "/" + m.WindowEnd.UTC().Format(time.RFC3339)
	}
	if m.OffsetFirst != nil && m.OffsetLast != nil && m.Partition != nil {
		return fmt.Sprintf("p%d:%d-%d", *m.Partition, *m.OffsetFirst, *m.OffsetLast)
	}
	return ""
}

// manifest reads and checks one manifest against its key and the registry.
func (l *Loader) manifest(ctx context.Context, key string) (*landing.Manifest, registry.Table, error) {
	rc, err := l.Store.Get(ctx, key)
	if errors.Is(err, fs.ErrNotExist) {
		return nil, registry.Table{}, exitcode.Wrap(exitcode.Retryable, fmt.Errorf("manifest %s: %w", key, ErrNotLanded))
	}
	if err != nil {
		return nil, registry.Table{}, objstore.Classify(fmt.Errorf("read manifest %s: %w", key, err))
	}
	b, err := io.ReadAll(rc)
	rc.Close()
	if err != nil {
		return nil, registry.Table{}, objstore.Classify(fmt.Errorf("read manifest %s: %w", key, err))
	}
	m, err := landing.ParseManifest(b)
	if err != nil {
		return nil, registry.Table{}, exitcode.Wrap(exitcode.Permanent, fmt.Errorf("manifest %s: %w: %v", key, ErrInconsistent, err))
	}
	if m.DataKey != landing.DataKeyOf(key) {
		return nil, registry.Table{}, exitcode.Wrap(exitcode.Permanent, fmt.Errorf("manifest %s: %w: data_key is %s", key, ErrInconsistent, m.DataKey))
	}
	t, ok := l.Registry.Table(m.Table)
	if !ok {
		return nil, registry.Table{}, exitcode.Errorf(exitcode.Permanent, "manifest %s: table %s is not in shards.yaml", key, m.Table)
	}
	if err := warehouse.CheckManifest(t, m); err != nil {
		return nil, registry.Table{}, exitcode.Wrap(exitcode.Permanent, fmt.Errorf("%w: %v", ErrInconsistent, err))
	}
	return m, t, nil
}

// fetch checks the data file's size and sha256 against the manifest and returns a local
// path for backends that need one ("" for stage readers). cleanup removes a temp copy.
func (l *Loader) fetch(ctx context.Context, m *landing.Manifest) (path string, cleanup func(), err error) {
	cleanup = func() {}
	_, staged := l.Warehouse.(warehouse.StageReader)
	if ls, ok := l.Store.(LocalStore); ok && !staged {
		p, err := ls.LocalPath(m.DataKey)
		if err != nil {
			return "", cleanup, exitcode.Wrap(exitcode.Permanent, err)
		}
		f, err := os.Open(p)
		if err != nil {
			return "", cleanup, dataErr(m, err)
		}
		defer f.Close()
		if err := check(m, f); err != nil {
			return "", cleanup, err
		}
		return p, cleanup, nil
	}
	rc, err := l.Store.Get(ctx, m.DataKey)
	if err != nil {
		return "", cleanup, dataErr(m, err)
	}
	defer rc.Close()
	if staged {
		return "", cleanup, check(m, rc)
	}
	tmp, err := os.CreateTemp(l.TempDir, "load-*.parquet")
	if err != nil {
		return "", cleanup, fmt.Errorf("copy %s: %w", m.DataKey, err)
	}
	cleanup = func() { os.Remove(tmp.Name()) }
	err = check(m, io.TeeReader(rc, tmp))
	if cerr := tmp.Close(); err == nil && cerr != nil {
		err = fmt.Errorf("copy %s: %w", m.DataKey, cerr)
	}
	if err != nil {
		cleanup()
		return "", func() {}, err
	}
	return tmp.Name(), cleanup, nil
}

func dataErr(m *landing.Manifest, err error) error {
	if errors.Is(err, fs.ErrNotExist) {
		return exitcode.Wrap(exitcode.Permanent, fmt.Errorf("data file %s: %w: manifest exists, data file does not", m.DataKey, ErrInconsistent))
	}
	return objstore.Classify(fmt.Errorf("read data file %s: %w", m.DataKey, err))
}

// check reads r to the end and compares its size and sha256 with the manifest.
func check(m *landing.Manifest, r io.Reader) error {
	h := sha256.New()
	n, err := io.Copy(h, r)
	if err != nil {
		return objstore.Classify(fmt.Errorf("read data file %s: %w", m.DataKey, err))
	}
	if n != m.DataBytes {
		return exitcode.Wrap(exitcode.Permanent, fmt.Errorf("data file %s: %w: %d bytes, manifest says %d", m.DataKey, ErrInconsistent, n, m.DataBytes))
	}
	if got := hex.EncodeToString(h.Sum(nil)); got != m.DataSHA256 {
		return exitcode.Wrap(exitcode.Permanent, fmt.Errorf("data file %s: %w: sha256 %s, manifest says %s", m.DataKey, ErrInconsistent, got, m.DataSHA256))
	}
	return nil
}

// classify gives warehouse errors their exit code: a file that disagrees with its
// manifest is permanent; a write conflict, a cancelled context or a network error is
// retryable; anything else is permanent.
func classify(err error) error {
	var ne net.Error
	switch {
	case err == nil:
		return nil
	case errors.Is(err, warehouse.ErrMismatch):
		return exitcode.Wrap(exitcode.Permanent, fmt.Errorf("%w: %w", ErrInconsistent, err))
	case errors.Is(err, warehouse.ErrConflict), errors.Is(err, context.Canceled), errors.Is(err, context.DeadlineExceeded), errors.As(err, &ne):
		return exitcode.Wrap(exitcode.Retryable, err)
	}
	return exitcode.Wrap(exitcode.Permanent, err)
}

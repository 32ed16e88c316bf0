// Package extract lands one closed window [t0, t1) of one table of one shard: it proves
// the window is closed, checks the shard's schema against shards.yaml, reads the window
// in one REPEATABLE READ snapshot with keyset pages on the (updated_at, pk) index, keeps
// only the rows the shard owned at their instant, tokenizes PCI columns in-process,
// writes one Parquet file at a deterministic key and then its manifest
// (docs/contracts.md §1-§5; invariants 1-3, 5 and 6 of docs/architecture.md).
//
// Idempotency: for a given (shard, table, window) a run writes the same two keys
// (landing.BatchKey and its manifest). A re-run first deletes the manifest, then
// overwrites the data file, then writes the manifest, so at every instant the window is
// either not landed or landed with a manifest that describes the data file under it.
package extract

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"hash"
	"io"
	"log/slog"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/shopsphere/shardflow/internal/fence"
	"github.com/shopsphere/shardflow/internal/landing"
	"github.com/shopsphere/shardflow/internal/objstore"
	"github.com/shopsphere/shardflow/internal/registry"
	"github.com/shopsphere/shardflow/internal/window"
)

// Sentinels.
var (
	// ErrChecksumMismatch: the rows streamed differ from the snapshot's own count and
	// checksum (a bug or a concurrent schema change); no manifest was written.
	ErrChecksumMismatch = errors.New("self-check failed")
	// ErrWrongBucket: a row's bucket column is not registry.Bucket(customer_id)
	// (landing.ErrWrongBucket, the same error on both paths).
	ErrWrongBucket = landing.ErrWrongBucket
	// ErrMovedAway: the window predates a move's cleanup of this shard (exit 3).
	ErrMovedAway = errors.New("the window's rows of moved buckets were cleaned off this shard")
)

// Job is one window of one table of one shard.
type Job struct {
	Shard  string
	Table  string
	Window window.Window
}

func (j Job) String() string {
	return fmt.Sprintf("shard %s table %s window %s", j.Shard, j.Table, j.Window)
}

// Result is what a run landed.
type Result struct {
	Job         Job
	DataKey     string
	ManifestKey string
	Manifest    *landing.Manifest
	Scanned     int64 // rows read from the window
	Unowned     int64 // rows skipped because the shard did not own their bucket at their instant
	Pages       int
	Duration    time.Duration
	Schema      *Schema // how the shard's table compared with shards.yaml: rolling-out columns it lacks, undeclared ones
}

// Extractor lands windows of one shard.
type Extractor struct {
	Registry  *registry.Registry
	Conn      *pgx.Conn // the shard, extract role; not in a transaction. Run opens a second connection with its config for the source checksum
	Store     objstore.Store
	Tokenizer landing.Tokenizer
	NewWriter landing.NewFileWriter

	CodeVersion    string
	Logger         *slog.Logger
	ProgressEvery  time.Duration    // default 5s
	Now            func() time.Time // default time.Now; _extracted_at and manifest time
	SafetyLag      *time.Duration   // overrides extract.safety_lag (tests)
	PageSize       int              // overrides extract.page_size
	AfterPage      func(page int)   // test hook: called after each page is written
	BeforeManifest func()           // test hook: called after the data file is stored, before the manifest
}

func (e *Extractor) logger() *slog.Logger {
	if e.Logger != nil {
		return e.Logger
	}
	return slog.Default()
}

func (e *Extractor) now() time.Time {
	if e.Now != nil {
		return e.Now()
	}
	return time.Now()
}

func (e *Extractor) safetyLag() time.Duration {
	if e.SafetyLag != nil {
		return *e.SafetyLag
	}
	return e.Registry.Extract.SafetyLag.Duration
}

func (e *Extractor) pageSize() int {
	if e.PageSize > 0 {
		return e.PageSize
	}
	return e.Registry.Extract.PageSize
}

// prepare resolves the job against the registry. The queries carry the shard's
// ownership view (view): the registry's, amended by the shard's own fence rows for a
// pending move (decisions/0017).
func (e *Extractor) prepare(j Job) (registry.Table, error) {
	if _, ok := e.Registry.Shard(j.Shard); !ok {
		return registry.Table{}, fmt.Errorf("%s: shard is not in shards.yaml", j)
	}
	t, ok := e.Registry.Table(j.Table)
	if !ok {
		return registry.Table{}, fmt.Errorf("%s: table is not in shards.yaml", j)
	}
	if err := j.Window.Aligned(e.Registry.Extract.Window.Duration); err != nil {
		return registry.Table{}, fmt.Errorf("%s: %w", j, err)
	}
	return t, nil
}

// view reads the shard's fence rows (in tx's snapshot during a run) and returns its
// ownership view. A window of the source of a cleaned-up move that starts before the
// source's marker is refused: the moved buckets' rows of that window are gone from
// the shard, so extracting it again would land them no more and, loaded, erase them.
func (e *Extractor) view(ctx context.Context, q fence.Querier, j Job) (*registry.ShardView, error) {
	v, rows, err := fence.View(ctx, q, e.Registry, j.Shard)
	if errors.Is(err, fence.ErrNoTable) {
		return nil, driftErr(fmt.Errorf("%s: %w", j, err))
	}
	if err != nil {
		return nil, classify(fmt.Errorf("%s: %w", j, err))
	}
	for _, r := range rows {
		if r.Role == registry.RoleFrom && !r.CleanedAt.IsZero() && j.Window.Start.Before(r.MarkerAt) {
			return nil, dataErr(fmt.Errorf("%s: %w: move %d cleaned buckets %s off this shard at %s; this window starts before the shard's marker %s, so its rows of those buckets now live on %s only (their landed file is the window's record: keep it)",
				j, ErrMovedAway, r.Epoch, r.Range, r.CleanedAt.Format(time.RFC3339), r.MarkerAt.Format(time.RFC3339Nano), r.Peer))
		}
	}
	return v, nil
}

// Plan is what a run would do, computed without writing anything.
type Plan struct {
	Job          Job
	DataKey      string
	ManifestKey  string
	PageQuery    string
	CheckQuery   string
	PageSize     int
	SafetyLag    time.Duration
	Closedness   Closedness
	Schema       *Schema  // how the shard's table compares with shards.yaml
	SchemaError  error    // Schema.Err(): nil unless a difference refuses the table
	Columns      []string // landed columns, in file order
	Dropped      []string // drop-policy columns, never selected
	Intervals    []registry.Interval
	IndexScanned bool   // EXPLAIN shows no Seq Scan on the table
	PlanSummary  string // the nodes of EXPLAIN, one line
}

// Plan checks schema and closedness and explains the page query without writing.
func (e *Extractor) Plan(ctx context.Context, j Job) (*Plan, error) {
	t, err := e.prepare(j)
	if err != nil {
		return nil, usageErr(err)
	}
	v, err := e.view(ctx, e.Conn, j)
	if err != nil {
		return nil, err
	}
	sch, err := CheckSchema(ctx, e.Conn, j.Shard, t)
	if err != nil {
		return nil, retryable(err)
	}
	q, err := NewQueries(t, v.Intervals(), sch.Absent)
	if err != nil {
		return nil, usageErr(err)
	}
	dataKey := landing.BatchKey(j.Table, j.Shard, j.Window.Start, j.Window.End)
	p := &Plan{Job: j, DataKey: dataKey, ManifestKey: landing.ManifestKey(dataKey), PageQuery: q.Page, CheckQuery: q.Checksum,
		PageSize: e.pageSize(), SafetyLag: e.safetyLag(), Dropped: t.Dropped(), Intervals: v.Intervals(), Schema: sch, SchemaError: sch.Err()}
	for _, c := range landing.Columns(t) {
		p.Columns = append(p.Columns, c.Name)
	}
	if p.Closedness, err = CheckClosed(ctx, e.Conn, j.Shard, j.Table, j.Window, e.safetyLag()); err != nil {
		return nil, classify(err)
	}
	args := append([]any{j.Window.Start, j.Window.End, p.PageSize}, q.FirstAfter(j.Window.Start)...)
	if p.SchemaError == nil {
		nodes, err := ExplainNodes(ctx, e.Conn, q.Page, args...)
		if err != nil {
			return nil, classify(err)
		}
		p.IndexScanned = !HasSeqScan(nodes, t.Name)
		p.PlanSummary = SummarizePlan(nodes)
	}
	return p, nil
}

// Run lands the window. Errors carry exit codes (internal/exitcode): a window not closed
// yet or an unreachable shard/store is retryable (75), schema drift is 4, a wrong bucket
// or a failed self-check is 3, a bad job is 2.
func (e *Extractor) Run(ctx context.Context, j Job) (*Result, error) {
	start := time.Now()
	log := e.logger().With("shard", j.Shard, "table", j.Table, "window", j.Window.String())
	t, err := e.prepare(j)
	if err != nil {
		return nil, usageErr(err)
	}
	pipe, err := landing.NewPipeline(e.Registry, t, e.Tokenizer, e.NewWriter)
	if err != nil {
		return nil, usageErr(fmt.Errorf("%s: %w", j, err))
	}
	sch, err := CheckSchema(ctx, e.Conn, j.Shard, t)
	if err != nil {
		return nil, classify(err)
	}
	if err := sch.Err(); err != nil {
		return nil, driftErr(err)
	}
	warnSchema(log, sch)
	// Closedness is checked before the snapshot exists (decisions/0002).
	cl, err := CheckClosed(ctx, e.Conn, j.Shard, j.Table, j.Window, e.safetyLag())
	if err != nil {
		return nil, classify(err)
	}
	if !cl.Closed {
		return nil, retryable(cl.Err)
	}

	tx, err := e.Conn.BeginTx(ctx, pgx.TxOptions{IsoLevel: pgx.RepeatableRead, AccessMode: pgx.ReadOnly})
	if err != nil {
		return nil, classify(fmt.Errorf("%s: begin snapshot: %w", j, err))
	}
	defer func() { _ = tx.Rollback(context.WithoutCancel(ctx)) }()

	// The first statement takes the snapshot: the shard's fences in it decide a pending
	// move's rows (its marker commits before any row it judges).
	v, err := e.view(ctx, tx, j)
	if err != nil {
		return nil, err
	}
	q, err := NewQueries(t, v.Intervals(), sch.Absent)
	if err != nil {
		return nil, usageErr(fmt.Errorf("%s: %w", j, err))
	}
	// The source side of the self-check, in this snapshot on a second connection, while
	// the pages are read on this one.
	snapshot, err := exportSnapshot(ctx, tx)
	if err != nil {
		return nil, classify(fmt.Errorf("%s: export snapshot: %w", j, err))
	}
	sctx, cancelSource := context.WithCancel(ctx)
	defer cancelSource()
	source := e.sourceChecksum(sctx, j, q, snapshot)

	dataKey := landing.BatchKey(j.Table, j.Shard, j.Window.Start, j.Window.End)
	manKey := landing.ManifestKey(dataKey)
	// Un-land the window before overwriting its data (see the package doc).
	if err := e.Store.Delete(ctx, manKey); err != nil {
		return nil, objstore.Classify(fmt.Errorf("%s: delete old manifest %s: %w", j, manKey, err))
	}

	extractedAt := e.now().UTC().Truncate(time.Microsecond)
	res := &Result{Job: j, DataKey: dataKey, ManifestKey: manKey, Schema: sch}

	// The data file streams through a pipe into the store; sha256 and size on the way.
	pr, pw := io.Pipe()
	counter := &countingWriter{w: pw, h: sha256.New()}
	putErr := make(chan error, 1)
	go func() {
		err := e.Store.Put(ctx, dataKey, pr)
		_ = pr.CloseWithError(err) // unblock the writer if Put stopped early
		putErr <- err
	}()
	abort := func(err error) (*Result, error) {
		_ = pw.CloseWithError(err)
		<-putErr
		return nil, err
	}

	f, err := pipe.Open(counter, landing.Lineage{Shard: j.Shard, Source: landing.Batch,
		WindowStart: j.Window.Start.UTC(), WindowEnd: j.Window.End.UTC()}, v)
	if err != nil {
		return abort(fmt.Errorf("%s: %w", j, err))
	}
	sc, err := newScanner(q.Columns())
	if err != nil {
		return abort(fmt.Errorf("%s: %w", j, err))
	}

	absent := sch.AbsentList()
	pageSize := e.pageSize()
	lastLog := time.Now()
	every := e.ProgressEvery
	if every <= 0 {
		every = 5 * time.Second
	}
	// Pages are read by one goroutine while this one tokenizes and writes the previous
	// page, so the shard's work and ours overlap. Rows stay in keyset order.
	rctx, cancelRead := context.WithCancel(ctx)
	pages, free := readPages(rctx, tx, q, j.Window, pageSize, sc)
	defer func() {
		cancelRead()
		for range pages { // wait for the reader to stop using the connection
		}
	}()
	for p := range pages {
		if p.err != nil {
			return abort(classify(fmt.Errorf("%s: page %d: %w", j, res.Pages+1, p.err)))
		}
		for _, row := range p.rows[:p.n] {
			res.Scanned++
			// a batch row has no commit time of its own: _commit_ts is its watermark
			if err := f.Add(row, landing.Change{Op: "r", CommitTS: row[q.wmIdx].(time.Time), Absent: absent}); err != nil {
				return abort(fmt.Errorf("%s: %w", j, err))
			}
		}
		free <- p
		res.Pages++
		if e.AfterPage != nil {
			e.AfterPage(res.Pages)
		}
		if time.Since(lastLog) >= every {
			el := time.Since(start)
			log.Info("extract progress", "rows", f.Checksum().Rows(), "scanned", res.Scanned, "pages", res.Pages,
				"rows_per_s", int64(float64(res.Scanned)/el.Seconds()), "duration", el.Round(time.Millisecond))
			lastLog = time.Now()
		}
	}
	if err := f.Close(); err != nil {
		return abort(fmt.Errorf("%s: %w", j, err))
	}
	res.Unowned = f.Unowned()
	sum := f.Checksum()
	src := <-source
	if src.err != nil {
		return abort(src.err)
	}
	if sum.Rows() != src.rows || sum.String() != src.sum {
		return abort(dataErr(fmt.Errorf("%s: %w: streamed %d rows checksum %s, the snapshot's ownership-filtered SQL says %d rows checksum %s; no manifest written",
			j, ErrChecksumMismatch, sum.Rows(), sum.String(), src.rows, src.sum)))
	}
	if err := pw.Close(); err != nil {
		return nil, err
	}
	if err := <-putErr; err != nil {
		return nil, objstore.Classify(fmt.Errorf("%s: put %s: %w", j, dataKey, err))
	}
	if err := tx.Commit(ctx); err != nil {
		return nil, classify(fmt.Errorf("%s: end snapshot: %w", j, err))
	}
	if e.BeforeManifest != nil {
		e.BeforeManifest()
	}

	epoch := e.Registry.EpochAt(j.Window.Start)
	if newest, ok := f.Epoch(); ok && newest > epoch {
		// a window that spans a cutover records the newest epoch of its rows
		epoch = newest
	}
	ws, we := j.Window.Start.UTC(), j.Window.End.UTC()
	m := &landing.Manifest{
		Format: landing.FormatVersion, Table: j.Table, Shard: j.Shard, Source: landing.Batch,
		WindowStart: &ws, WindowEnd: &we, RegistryEpoch: epoch,
		Rows: sum.Rows(), Checksum: sum.String(),
		DataKey: dataKey, DataBytes: counter.n, DataSHA256: hex.EncodeToString(counter.h.Sum(nil)),
		Columns: pipe.Columns(), AbsentColumns: sch.Absent, TokenizerKeyID: e.Tokenizer.KeyID(), ExtractedAt: extractedAt, CodeVersion: e.CodeVersion,
	}
	body, err := m.Marshal()
	if err != nil {
		return nil, fmt.Errorf("%s: manifest: %w", j, err)
	}
	if err := e.Store.Put(ctx, manKey, bytesReader(body)); err != nil {
		return nil, objstore.Classify(fmt.Errorf("%s: put %s: %w", j, manKey, err))
	}
	res.Manifest = m
	res.Duration = time.Since(start)
	log.Info("window landed", "rows", m.Rows, "scanned", res.Scanned, "unowned", res.Unowned, "pages", res.Pages,
		"bytes", m.DataBytes, "rows_per_s", int64(float64(res.Scanned)/res.Duration.Seconds()), "duration", res.Duration.Round(time.Millisecond), "key", dataKey)
	return res, nil
}

// warnSchema logs what of the shard's schema differs from shards.yaml without stopping
// the table: each undeclared column (never read), the rolling-out columns it lacks yet.
func warnSchema(log *slog.Logger, s *Schema) {
	for _, d := range s.Undeclared {
		log.Warn("undeclared column on the shard: not extracted until shards.yaml declares it with its pci policy",
			"column", d.Column, "type", d.Found)
	}
	if len(s.Absent) > 0 {
		log.Info("rolling-out columns the shard lacks yet land NULL, named in _absent_columns", "columns", s.AbsentList())
	}
}

type countingWriter struct {
	w io.Writer
	h hash.Hash
	n int64
}

func (c *countingWriter) Write(p []byte) (int, error) {
	n, err := c.w.Write(p)
	c.h.Write(p[:n])
	c.n += int64(n)
	return n, err
}

// page is one keyset page of landed values (rows[:n]), or the error that ended reading.
type page struct {
	rows [][]any
	n    int
	err  error
}

// readPages reads the window's keyset pages in tx on its own goroutine and sends them,
// in order, on the returned channel, which it closes after the last page (one with fewer
// than pageSize rows), an error, or ctx's end. The consumer returns each page on free
// when done with it; three pages circulate.
func readPages(ctx context.Context, tx pgx.Tx, q *Queries, w window.Window, pageSize int, sc *scanner) (<-chan *page, chan<- *page) {
	const buffers = 3
	out := make(chan *page, 1)
	free := make(chan *page, buffers)
	for i := 0; i < buffers; i++ {
		p := &page{rows: make([][]any, pageSize)}
		for k := range p.rows {
			p.rows[k] = make([]any, len(q.cols))
		}
		free <- p
	}
	go func() {
		defer close(out)
		send := func(p *page) bool {
			select {
			case out <- p:
				return true
			case <-ctx.Done():
				return false
			}
		}
		after := q.FirstAfter(w.Start)
		m := tx.Conn().TypeMap()
		for {
			var p *page
			select {
			case p = <-free:
			case <-ctx.Done():
				return
			}
			p.n, p.err = 0, nil
			args := append([]any{w.Start, w.End, pageSize}, after...)
			rows, err := tx.Query(ctx, q.Page, args...)
			if err != nil {
				p.err = err
				send(p)
				return
			}
			if err := sc.plan(rows.FieldDescriptions()); err != nil {
				rows.Close()
				p.err = fmt.Errorf("scan: %w", err)
				send(p)
				return
			}
			for rows.Next() {
				if err := sc.decode(m, rows.RawValues(), p.rows[p.n]); err != nil {
					rows.Close()
					p.err = fmt.Errorf("scan: %w", err)
					send(p)
					return
				}
				p.n++
			}
			if err := rows.Err(); err != nil {
				p.err = err
				send(p)
				return
			}
			if p.n > 0 {
				// the keyset position: the last row read, owned or not
				last := p.rows[p.n-1]
				after[0] = last[q.wmIdx]
				for i, k := range q.keyIdx {
					after[i+1] = last[k]
				}
			}
			full := p.n == pageSize
			if !send(p) || !full {
				return
			}
		}
	}()
	return out, free
}

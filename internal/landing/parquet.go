package landing

import (
	"fmt"
	"io"
	"time"
	"unsafe"

	"github.com/parquet-go/parquet-go"
)

// ParquetWriter writes landed rows into one Parquet file (docs/contracts.md §5 types):
// every column optional and snappy-compressed; uuid and text as strings, bigint int64,
// integer int32, boolean, timestamptz as timestamp µs UTC, date as date. extract-window
// and `tokenize cdc` both write through it, so both paths land the same bytes.
//
// Rows are buffered and handed to parquet-go 1024 at a time; the row buffers of a
// flushed batch are reused and strings are referenced, not copied, until the flush
// (parquet-go copies them into its column buffers), which is what keeps extract's rate.
// A batch is encoded (column buffers, pages, compression, the output's writes) on a
// goroutine of its own while the caller fills the next one: two batches alternate, and
// the calls into parquet-go are the same, in the same order, as written one by one, so
// the bytes are too. No goroutine outlives a batch: a writer dropped without Close
// leaks none.
type ParquetWriter struct {
	w     *parquet.Writer
	cols  []Column
	leaf  []int         // column position → leaf index in the schema (parquet-go sorts group fields)
	buf   []parquet.Row // the batch being filled
	spare []parquet.Row // the batch being encoded, or the last one encoded: its row buffers are reused
	batch int

	encoded  chan error // the result of the batch being encoded
	inflight bool       // a batch is being encoded
	err      error      // the first encoding error: every later call returns it
}

// NewParquetWriter opens a ParquetWriter over out for cols. Close writes the footer;
// out is not closed.
func NewParquetWriter(out io.Writer, cols []Column) (*ParquetWriter, error) {
	g := parquet.Group{}
	for _, c := range cols {
		var n parquet.Node
		switch c.Type {
		case "uuid", "text":
			n = parquet.String()
		case "bigint":
			n = parquet.Int(64)
		case "integer":
			n = parquet.Int(32)
		case "boolean":
			n = parquet.Leaf(parquet.BooleanType)
		case "timestamptz":
			n = parquet.Timestamp(parquet.Microsecond)
		case "date":
			n = parquet.Date()
		default:
			return nil, fmt.Errorf("parquet writer: column %s has unsupported type %s", c.Name, c.Type)
		}
		if _, dup := g[c.Name]; dup {
			return nil, fmt.Errorf("parquet writer: column %s appears twice", c.Name)
		}
		g[c.Name] = parquet.Optional(parquet.Compressed(n, &parquet.Snappy))
	}
	schema := parquet.NewSchema("landed", g)
	idx := map[string]int{}
	for i, p := range schema.Columns() {
		idx[p[0]] = i
	}
	wr := &ParquetWriter{w: parquet.NewWriter(out, schema), cols: cols, batch: 1024, encoded: make(chan error, 1)}
	for _, c := range cols {
		wr.leaf = append(wr.leaf, idx[c.Name])
	}
	return wr, nil
}

// Write buffers one row: one value per column, in the order of the columns the writer
// was opened with, each string, int64, int32, bool, time.Time or nil (NULL). The
// writer keeps no reference to row after returning.
func (w *ParquetWriter) Write(row []any) error {
	if len(row) != len(w.cols) {
		return fmt.Errorf("parquet writer: a row of %d values for %d columns", len(row), len(w.cols))
	}
	var r parquet.Row
	if n := len(w.buf); n < cap(w.buf) && len(w.buf[:n+1][n]) == len(row) {
		r = w.buf[:n+1][n] // a row buffer of an earlier batch
	} else {
		r = make(parquet.Row, len(row))
	}
	for i, v := range row {
		var pv parquet.Value
		switch x := v.(type) {
		case nil:
			r[w.leaf[i]] = parquet.NullValue().Level(0, 0, w.leaf[i])
			continue
		case string:
			// Go strings are immutable: referencing the bytes until the flush is safe.
			pv = parquet.ByteArrayValue(unsafe.Slice(unsafe.StringData(x), len(x)))
		case int64:
			pv = parquet.Int64Value(x)
		case int32:
			pv = parquet.Int32Value(x)
		case bool:
			pv = parquet.BooleanValue(x)
		case time.Time:
			if w.cols[i].Type == "date" {
				pv = parquet.Int32Value(int32(floorDiv(x.Unix(), 86400)))
			} else {
				pv = parquet.Int64Value(x.UnixMicro())
			}
		default:
			return fmt.Errorf("parquet writer: column %s: unsupported value type %T", w.cols[i].Name, v)
		}
		r[w.leaf[i]] = pv.Level(0, 1, w.leaf[i])
	}
	w.buf = append(w.buf, r)
	if len(w.buf) >= w.batch {
		return w.flush()
	}
	return nil
}

func floorDiv(a, b int64) int64 {
	q := a / b
	if a%b != 0 && a < 0 {
		q--
	}
	return q
}

// flush hands the buffered batch to a goroutine that encodes it, after the batch before
// it is encoded, and makes the buffer of that one the next to fill.
func (w *ParquetWriter) flush() error {
	if err := w.wait(); err != nil {
		return err
	}
	if len(w.buf) == 0 {
		return nil
	}
	batch := w.buf
	w.buf, w.spare = w.spare[:0], batch
	w.inflight = true
	go func() {
		_, err := w.w.WriteRows(batch)
		w.encoded <- err
	}()
	return nil
}

// wait waits for the batch being encoded, if any, and returns the first encoding error.
func (w *ParquetWriter) wait() error {
	if w.inflight {
		w.inflight = false
		if err := <-w.encoded; err != nil && w.err == nil {
			w.err = fmt.Errorf("parquet writer: write rows: %w", err)
		}
	}
	return w.err
}

// Close encodes the buffered rows and writes the footer.
func (w *ParquetWriter) Close() error {
	if err := w.flush(); err != nil {
		return err
	}
	if err := w.wait(); err != nil {
		return err
	}
	if err := w.w.Close(); err != nil {
		return fmt.Errorf("parquet writer: close: %w", err)
	}
	return nil
}

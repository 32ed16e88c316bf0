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
// Rows are buffered 1024 at a time, column by column, as parquet-go values (strings
// referenced, not copied, until parquet-go copies them into its column buffers), and
// each column's values are handed to its parquet-go column writer 64 rows at a time:
// the calls parquet-go's own WriteRows makes for those rows, in its order (chunks of 64
// rows, columns in schema order), without its scattering of rows into columns, so the
// bytes are the same. A batch is encoded (column buffers, pages, compression) on a
// goroutine of its own while the caller fills the next one; two batches alternate. No
// goroutine outlives a batch: a writer dropped without Close leaks none.
type ParquetWriter struct {
	w     *parquet.Writer
	cols  []Column
	leaf  []int             // column position → leaf index in the schema (parquet-go sorts group fields)
	buf   [][]parquet.Value // the batch being filled: per leaf column, one value per row
	spare [][]parquet.Value // the batch being encoded, or the last one encoded: reused next
	rows  int               // rows in buf
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
	wr.buf, wr.spare = newColumnBatch(len(cols), wr.batch), newColumnBatch(len(cols), wr.batch)
	return wr, nil
}

func newColumnBatch(cols, rows int) [][]parquet.Value {
	b := make([][]parquet.Value, cols)
	for i := range b {
		b[i] = make([]parquet.Value, 0, rows)
	}
	return b
}

// Write buffers one row: one value per column, in the order of the columns the writer
// was opened with, each string, int64, int32, bool, time.Time or nil (NULL). The
// writer keeps no reference to row after returning.
func (w *ParquetWriter) Write(row []any) error {
	if len(row) != len(w.cols) {
		return fmt.Errorf("parquet writer: a row of %d values for %d columns", len(row), len(w.cols))
	}
	for i, v := range row {
		var pv parquet.Value
		switch x := v.(type) {
		case nil:
			w.buf[w.leaf[i]] = append(w.buf[w.leaf[i]], parquet.NullValue().Level(0, 0, w.leaf[i]))
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
			for c := range w.buf { // drop the row's values written so far
				w.buf[c] = w.buf[c][:w.rows]
			}
			return fmt.Errorf("parquet writer: column %s: unsupported value type %T", w.cols[i].Name, v)
		}
		w.buf[w.leaf[i]] = append(w.buf[w.leaf[i]], pv.Level(0, 1, w.leaf[i]))
	}
	w.rows++
	if w.rows >= w.batch {
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
	if w.rows == 0 {
		return nil
	}
	batch, rows := w.buf, w.rows
	w.buf, w.spare, w.rows = w.spare, batch, 0
	for c := range w.buf {
		w.buf[c] = w.buf[c][:0]
	}
	w.inflight = true
	go func() { w.encoded <- encodeBatch(w.w.ColumnWriters(), batch, rows) }()
	return nil
}

// encodeBatch writes rows rows of batch (per leaf column, one value per row) to the
// column writers as parquet-go's WriteRows would: 64 rows at a time, each chunk column
// by column in schema order (a page is flushed only between those calls).
func encodeBatch(cws []*parquet.ColumnWriter, batch [][]parquet.Value, rows int) error {
	const chunk = 64 // parquet-go's rows per write in (*ConcurrentRowGroupWriter).WriteRows
	for lo := 0; lo < rows; lo += chunk {
		hi := min(lo+chunk, rows)
		for c, vals := range batch {
			if _, err := cws[c].WriteRowValues(vals[lo:hi]); err != nil {
				return err
			}
		}
	}
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

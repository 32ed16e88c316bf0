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
	date  []bool            // column position → a date column (time.Time as days)
	buf   [][]parquet.Value // the batch being filled: per leaf column, batch values, the first rows set
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
		wr.date = append(wr.date, c.Type == "date")
	}
	wr.buf, wr.spare = newColumnBatch(len(cols), wr.batch), newColumnBatch(len(cols), wr.batch)
	return wr, nil
}

func newColumnBatch(cols, rows int) [][]parquet.Value {
	b := make([][]parquet.Value, cols)
	for i := range b {
		b[i] = make([]parquet.Value, rows)
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
		leaf := w.leaf[i]
		// the row's cell of the batch, written in place (a later row overwrites a dropped one)
		cell := (*value)(unsafe.Pointer(&w.buf[leaf][w.rows]))
		switch x := v.(type) {
		case nil:
			*cell = value{col: ^uint16(leaf)}
		case string:
			// Go strings are immutable: referencing the bytes until the flush is safe.
			*cell = value{ptr: unsafe.StringData(x), u64: uint64(len(x)), kind: ^int8(parquet.ByteArray), def: 1, col: ^uint16(leaf)}
		case int64:
			*cell = value{u64: uint64(x), kind: ^int8(parquet.Int64), def: 1, col: ^uint16(leaf)}
		case int32:
			*cell = value{u64: uint64(x), kind: ^int8(parquet.Int32), def: 1, col: ^uint16(leaf)}
		case bool:
			*cell = value{kind: ^int8(parquet.Boolean), def: 1, col: ^uint16(leaf)}
			if x {
				cell.u64 = 1
			}
		case time.Time:
			if w.date[i] {
				*cell = value{u64: uint64(int32(floorDiv(x.Unix(), 86400))), kind: ^int8(parquet.Int32), def: 1, col: ^uint16(leaf)}
			} else {
				*cell = value{u64: uint64(x.UnixMicro()), kind: ^int8(parquet.Int64), def: 1, col: ^uint16(leaf)}
			}
		default:
			return fmt.Errorf("parquet writer: column %s: unsupported value type %T", w.cols[i].Name, v)
		}
	}
	w.rows++
	if w.rows >= w.batch {
		return w.flush()
	}
	return nil
}

// value is parquet.Value's layout (parquet-go v0.32.0, value.go: data, then kind XOR'd,
// levels and column index XOR'd), so that Write builds a cell's value with its levels in
// one store: parquet.Value's constructors and its Level method (not inlined, a copy and a
// range check per cell) cost about 7% of extract's CPU. TestParquetValueLayout checks it
// against those constructors for every kind Write makes; an upgrade of parquet-go that
// changes the layout fails that test (and the size check below at init).
type value struct {
	ptr  *byte
	u64  uint64
	kind int8 // ^parquet.Kind; 0 is NULL
	def  byte // definition level: 1 for a value, 0 for NULL (every column is optional)
	rep  byte // repetition level, always 0
	col  uint16
}

func init() {
	if unsafe.Sizeof(value{}) != unsafe.Sizeof(parquet.Value{}) {
		panic("landing: parquet.Value's layout changed; see landing.value")
	}
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

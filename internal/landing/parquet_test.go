package landing_test

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"strings"
	"testing"
	"time"

	"github.com/parquet-go/parquet-go"
	"github.com/parquet-go/parquet-go/format"

	"github.com/shopsphere/shardflow/internal/landing"
)

var allTypes = []landing.Column{
	{Name: "id", Type: "uuid"}, {Name: "note", Type: "text"}, {Name: "big", Type: "bigint"},
	{Name: "small", Type: "integer"}, {Name: "flag", Type: "boolean"}, {Name: "at", Type: "timestamptz"},
	{Name: "day", Type: "date"}, {Name: "_shard", Type: "text"},
}

// row i of the round trip; every 7th row has NULLs in every column but id.
func rowOf(i int) []any {
	at := time.Date(2026, 3, 10, 10, 0, 0, 0, time.UTC).Add(time.Duration(i) * 1001 * time.Microsecond)
	day := time.Date(1969+i%60, time.Month(1+i%12), 1+i%28, 0, 0, 0, 0, time.UTC)
	if i%7 == 3 {
		return []any{fmt.Sprintf("0190a0e4-0000-7000-8000-%012d", i), nil, nil, nil, nil, nil, nil, nil}
	}
	return []any{fmt.Sprintf("0190a0e4-0000-7000-8000-%012d", i), strings.Repeat("é", i%5) + fmt.Sprint(i), int64(i) * -1_000_000_007,
		int32(i), i%2 == 0, at, day, fmt.Sprintf("s%02d", i%16)}
}

func TestParquetRoundTrip(t *testing.T) {
	const n = 2500 // more than two of the writer's batches, so row buffers are reused
	var buf bytes.Buffer
	w, err := landing.NewParquetWriter(&buf, allTypes)
	if err != nil {
		t.Fatal(err)
	}
	for i := range n {
		r := rowOf(i)
		if err := w.Write(r); err != nil {
			t.Fatal(err)
		}
		for k := range r {
			r[k] = "overwritten after Write" // the writer keeps no reference to the row
		}
	}
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}

	f, err := parquet.OpenFile(bytes.NewReader(buf.Bytes()), int64(buf.Len()))
	if err != nil {
		t.Fatal(err)
	}
	if f.NumRows() != n {
		t.Fatalf("%d rows, want %d", f.NumRows(), n)
	}
	got := readAll(t, f)
	for i := range n {
		want := rowOf(i)
		for k, c := range allTypes {
			if g, w := got[i][c.Name], norm(c, want[k]); g != w {
				t.Fatalf("row %d column %s: %v, want %v", i, c.Name, g, w)
			}
		}
	}

	// the layout of docs/contracts.md §5: optional, snappy, logical types
	for _, c := range allTypes {
		leaf, ok := f.Schema().Lookup(c.Name)
		if !ok {
			t.Fatalf("no column %s", c.Name)
		}
		if !leaf.Node.Optional() {
			t.Errorf("%s is not optional", c.Name)
		}
		if cc := leaf.Node.Compression(); cc == nil || cc.CompressionCodec() != format.Snappy {
			t.Errorf("%s: compression %v, want snappy", c.Name, cc)
		}
		want := map[string]string{"uuid": "STRING", "text": "STRING", "bigint": "INT(64,true)", "integer": "INT(32,true)",
			"boolean": "", "timestamptz": "TIMESTAMP(isAdjustedToUTC=true,unit=MICROS)", "date": "DATE"}[c.Type]
		got := ""
		if lt := leaf.Node.Type().LogicalType(); lt != nil {
			got = lt.String()
		}
		if got != want {
			t.Errorf("%s: logical type %q, want %q", c.Name, got, want)
		}
	}
}

// norm is the form readAll gives a value written to column c.
func norm(c landing.Column, v any) any {
	if x, ok := v.(time.Time); ok {
		if c.Type == "date" {
			return "date " + x.Format(time.DateOnly)
		}
		return x.UnixMicro()
	}
	return v
}

// readAll decodes every row by column name (nil for NULL).
func readAll(t *testing.T, f *parquet.File) []map[string]any {
	t.Helper()
	leaves := f.Schema().Columns()
	typeOf := map[string]string{}
	for _, c := range allTypes {
		typeOf[c.Name] = c.Type
	}
	r := parquet.NewReader(f)
	defer r.Close()
	var out []map[string]any
	rows := make([]parquet.Row, 100)
	for {
		k, err := r.ReadRows(rows)
		for _, row := range rows[:k] {
			m := map[string]any{}
			for _, v := range row {
				name := leaves[v.Column()][0]
				if v.IsNull() {
					m[name] = nil
					continue
				}
				switch typeOf[name] {
				case "uuid", "text":
					m[name] = string(v.ByteArray())
				case "bigint", "timestamptz":
					m[name] = v.Int64()
				case "integer":
					m[name] = v.Int32()
				case "boolean":
					m[name] = v.Boolean()
				case "date":
					m[name] = "date " + time.Unix(int64(v.Int32())*86400, 0).UTC().Format(time.DateOnly)
				}
			}
			out = append(out, m)
		}
		if errors.Is(err, io.EOF) {
			return out
		}
		if err != nil {
			t.Fatal(err)
		}
	}
}

func TestParquetWriterRefuses(t *testing.T) {
	if _, err := landing.NewParquetWriter(io.Discard, []landing.Column{{Name: "x", Type: "numeric"}}); err == nil || !strings.Contains(err.Error(), "column x") {
		t.Errorf("unsupported type: %v", err)
	}
	if _, err := landing.NewParquetWriter(io.Discard, []landing.Column{{Name: "x", Type: "text"}, {Name: "x", Type: "text"}}); err == nil {
		t.Error("a duplicate column was accepted")
	}
	w, err := landing.NewParquetWriter(io.Discard, allTypes[:2])
	if err != nil {
		t.Fatal(err)
	}
	if err := w.Write([]any{"a"}); err == nil {
		t.Error("a short row was accepted")
	}
	if err := w.Write([]any{"a", 1.5}); err == nil || !strings.Contains(err.Error(), "column note") || !strings.Contains(err.Error(), "float64") {
		t.Errorf("a float64 value: %v", err)
	}
}

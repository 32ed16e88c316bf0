package extracttest

import (
	"bytes"
	"errors"
	"io"
	"testing"

	"github.com/parquet-go/parquet-go"
)

// ParquetColumn reads one column of a landed Parquet file as strings ("" for NULL), page
// by page as a reader of the file would: tests look for tokens, last4 and card numbers
// in what landed.
func ParquetColumn(t testing.TB, b []byte, name string) []string {
	t.Helper()
	f, err := parquet.OpenFile(bytes.NewReader(b), int64(len(b)))
	if err != nil {
		t.Fatal(err)
	}
	leaf, ok := f.Schema().Lookup(name)
	if !ok {
		t.Fatalf("no column %s in the file", name)
	}
	var out []string
	for _, rg := range f.RowGroups() {
		pages := rg.ColumnChunks()[leaf.ColumnIndex].Pages()
		for {
			p, err := pages.ReadPage()
			if errors.Is(err, io.EOF) {
				break
			}
			if err != nil {
				t.Fatal(err)
			}
			vals := make([]parquet.Value, p.NumValues())
			n, err := p.Values().ReadValues(vals)
			if err != nil && !errors.Is(err, io.EOF) {
				t.Fatal(err)
			}
			for _, v := range vals[:n] {
				if v.IsNull() {
					out = append(out, "")
				} else {
					out = append(out, v.String())
				}
			}
		}
		pages.Close()
	}
	return out
}

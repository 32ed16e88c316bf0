package main

import (
	"bytes"
	"path/filepath"
	"strings"
	"testing"

	"github.com/shopsphere/shardflow/internal/capacity"
)

const output = `goos: linux
BenchmarkLoadWindow-2           	       3	 1631972342 ns/op	    306765 rows/s
BenchmarkReadParquetInsert-2    	       3	 1194406171 ns/op	    418618 rows/s
BenchmarkTokenize/token-2       	 5309546	       446.1 ns/op	   2240000 values/s	      96 B/op	       2 allocs/op
PASS
`

func TestRecordsRatesFromBenchOutput(t *testing.T) {
	path := filepath.Join(t.TempDir(), "rates.json")
	var out bytes.Buffer
	err := run([]string{"-rates", path, "-bench", "make bench-load",
		"-set", "load_rows_per_s=BenchmarkLoadWindow:rows/s,ref=BenchmarkReadParquetInsert:rows/s,note=500k rows, one file",
		"-set", "tokenize_values_per_s=BenchmarkTokenize/token:values/s"}, strings.NewReader(output), &out)
	if err != nil {
		t.Fatal(err)
	}
	if !strings.HasPrefix(out.String(), output) {
		t.Fatalf("the benchmark output is not echoed:\n%s", out.String())
	}
	rs, err := capacity.LoadRates(path)
	if err != nil {
		t.Fatal(err)
	}
	if r := rs["load_rows_per_s"]; r.Value != 306765 || r.Reference != 418618 || r.Unit != "rows/s" || r.Bench != "make bench-load" || r.Note != "500k rows, one file" {
		t.Errorf("load_rows_per_s = %+v", r)
	}
	if r := rs["tokenize_values_per_s"]; r.Value != 2240000 || r.Unit != "values/s" {
		t.Errorf("tokenize_values_per_s = %+v", r)
	}
}

func TestMissingBenchmarkRecordsNothing(t *testing.T) {
	path := filepath.Join(t.TempDir(), "rates.json")
	err := run([]string{"-rates", path, "-set", "x=BenchmarkAbsent:rows/s"}, strings.NewReader(output), &bytes.Buffer{})
	if err == nil || !strings.Contains(err.Error(), "no rows/s of BenchmarkAbsent") {
		t.Fatalf("err = %v, want the missing benchmark named", err)
	}
	if _, err := capacity.LoadRates(path); err == nil {
		t.Fatal("a rates file was written from a run that did not measure the figure")
	}
}

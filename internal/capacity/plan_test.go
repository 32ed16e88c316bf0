package capacity

import (
	"bytes"
	"errors"
	"flag"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// update rewrites the golden files: go test ./internal/capacity -update
var update = flag.Bool("update", false, "rewrite the golden files in testdata/")

func golden(t *testing.T, name string, got []byte) {
	t.Helper()
	path := filepath.Join("testdata", name)
	if *update {
		if err := os.WriteFile(path, got, 0o644); err != nil {
			t.Fatal(err)
		}
		return
	}
	want, err := os.ReadFile(path)
	if err != nil {
		t.Fatalf("%v (run go test ./internal/capacity -update to create it)", err)
	}
	if !bytes.Equal(got, want) {
		t.Errorf("%s differs from the output; if the change is intended, go test ./internal/capacity -update\n--- got ---\n%s", path, got)
	}
}

func committed(t *testing.T) ([]byte, Rates) {
	t.Helper()
	base, err := os.ReadFile("../../shards.yaml")
	if err != nil {
		t.Fatal(err)
	}
	return base, testRates()
}

// testRates are fixed figures (the first seeded ones), so the goldens do not change
// when make bench refreshes test/bench/rates.json.
func testRates() Rates {
	r := func(v, ref float64, unit, bench string) Rate {
		return Rate{Value: v, Reference: ref, Unit: unit, Bench: bench, Machine: "2 cores", At: "2026-12-01"}
	}
	return Rates{
		"extract_rows_per_s":     r(124158, 309030, "rows/s", "make bench-batch"),
		"extract_rows_per_s_10x": r(147942, 556442, "rows/s", "make bench-batch"),
		"cdc_events_per_s":       r(11576, 58745, "events/s", "make bench-cdc"),
		"debezium_events_per_s":  r(12467, 58745, "events/s", "make bench-cdc"),
		"load_rows_per_s":        r(306765, 418618, "rows/s", "make bench-load"),
	}
}

func value(t *testing.T, p *Plan, what string, i int) string {
	t.Helper()
	for _, s := range p.Sections {
		for _, l := range s.Lines {
			if l.What == what {
				return l.Values[i]
			}
		}
	}
	t.Fatalf("no line %q", what)
	return ""
}

func TestCompute(t *testing.T) {
	base, rates := committed(t)
	p, err := Compute(base, rates, []int{16, 64})
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		what   string
		at16   string
		at64   string
		reason string
	}{
		{"writes/s per shard at peak", "2,813/s", "703/s", "45K writes/s over the shards"},
		{"change topics (shard × table)", "48", "192", "one topic per shard and table"},
		{"connectors / tasks", "16 / 16", "64 / 64", "one Debezium connector and task per shard"},
		{"hourly DAG tasks", "147", "579", "the issue's count at 64 shards: 9 per shard + 3"},
		{"pods per hour", "182", "614", "9N+2 hourly pods + 36 CDC pods"},
		{"replicas (2 cores each)", "6", "6", "45,000 × 1.5 ÷ 11,576, rounded up"},
		{"brokers (kafka.m5.large)", "3", "3", "replication factor 3 dominates"},
		{"worker slots, one hourly run", "49", "193", "every table of every shard at once + CDC"},
		{"load warehouse size", "X-Small", "X-Small", "20M rows in 150 s at 306,765 rows/s"},
		// docs/retention.md's table (steady state, per month, 7 years)
		{"Standard, held", "159 TB", "159 TB", "docs/retention.md"},
		{"archive class, held", "849 TB", "849 TB", "docs/retention.md"},
		{"Standard, per month", "$3,631", "$3,631", "docs/retention.md"},
		{"archive class, per month", "$3,130", "$3,130", "docs/retention.md"},
		{"both, over the archive period from an empty bucket", "$395,266", "$395,266", "docs/retention.md: $282,951 + $112,315"},
	} {
		if got := value(t, p, tc.what, 0); got != tc.at16 {
			t.Errorf("%s at 16 shards = %s, want %s (%s)", tc.what, got, tc.at16, tc.reason)
		}
		if got := value(t, p, tc.what, 1); got != tc.at64 {
			t.Errorf("%s at 64 shards = %s, want %s (%s)", tc.what, got, tc.at64, tc.reason)
		}
	}
	// every input a line names is in the plan, with a source of its kind
	for _, s := range p.Sections {
		for _, l := range s.Lines {
			for _, name := range l.Inputs {
				in, ok := p.Input(name)
				if !ok {
					t.Errorf("%s: input %s not in the plan", l.What, name)
					continue
				}
				if k := in.Kind; (k == Measured || k == Vendor || k == Assumption) && !strings.HasPrefix(in.Source, string(k)) {
					t.Errorf("input %s: source %q does not start with its kind %q", name, in.Source, in.Kind)
				}
			}
		}
	}
}

func TestComputeScalesReplicas(t *testing.T) {
	base, rates := committed(t)
	for _, tc := range []struct {
		name   string
		rate   float64
		shards int
		want   string
	}{
		{"measured", 11576, 16, "6"},
		{"twice as fast", 23152, 16, "3"},
		{"slow: one replica per partition at most", 1000, 16, "48 (capped: one per partition)"},
		{"one shard, slow", 1000, 1, "3 (capped: one per partition)"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			rs := Rates{}
			for k, v := range rates {
				rs[k] = v
			}
			r := rs["cdc_events_per_s"]
			r.Value = tc.rate
			rs["cdc_events_per_s"] = r
			p, err := Compute(base, rs, []int{tc.shards})
			if err != nil {
				t.Fatal(err)
			}
			if got := value(t, p, "replicas (2 cores each)", 0); got != tc.want {
				t.Errorf("replicas = %s, want %s", got, tc.want)
			}
		})
	}
}

func TestComputeErrors(t *testing.T) {
	base, rates := committed(t)
	for _, tc := range []struct {
		name   string
		rates  func(Rates)
		shards []int
		is     error
		says   []string
	}{
		{"missing rate", func(r Rates) { delete(r, "cdc_events_per_s") }, []int{16}, ErrMissingRate,
			[]string{"cdc_events_per_s", "make bench-cdc"}},
		{"two missing", func(r Rates) { delete(r, "load_rows_per_s"); delete(r, "extract_rows_per_s") }, []int{16}, ErrMissingRate,
			[]string{"load_rows_per_s", "make bench-load", "extract_rows_per_s", "make bench-batch"}},
		{"zero rate", func(r Rates) { r["debezium_events_per_s"] = Rate{} }, []int{16}, ErrMissingRate,
			[]string{"debezium_events_per_s"}},
		{"no shard count", func(Rates) {}, nil, ErrShards, nil},
		{"zero shards", func(Rates) {}, []int{0}, ErrShards, []string{"0"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			rs := Rates{}
			for k, v := range rates {
				rs[k] = v
			}
			tc.rates(rs)
			_, err := Compute(base, rs, tc.shards)
			if !errors.Is(err, tc.is) {
				t.Fatalf("err = %v, want %v", err, tc.is)
			}
			for _, s := range tc.says {
				if !strings.Contains(err.Error(), s) {
					t.Errorf("error %q does not name %q", err, s)
				}
			}
		})
	}
}

func TestGolden(t *testing.T) {
	base, rates := committed(t)
	p, err := Compute(base, rates, []int{16, 64})
	if err != nil {
		t.Fatal(err)
	}
	var text, md bytes.Buffer
	if err := p.Text(&text); err != nil {
		t.Fatal(err)
	}
	if err := p.Markdown(&md); err != nil {
		t.Fatal(err)
	}
	golden(t, "capacity.txt", text.Bytes())
	golden(t, "capacity.md", md.Bytes())
}

func TestReplaceBlock(t *testing.T) {
	doc := []byte("# d\n\n" + BeginMarker + "\nold\nlines\n" + EndMarker + "\n\nafter\n")
	got, err := ReplaceBlock(doc, []byte("new\n\n"))
	if err != nil {
		t.Fatal(err)
	}
	want := "# d\n\n" + BeginMarker + "\nnew\n" + EndMarker + "\n\nafter\n"
	if string(got) != want {
		t.Errorf("got %q, want %q", got, want)
	}
	again, _ := ReplaceBlock(got, []byte("new\n"))
	if !bytes.Equal(again, got) {
		t.Errorf("not idempotent: %q", again)
	}
	for _, bad := range []string{"no markers", EndMarker + "\n" + BeginMarker} {
		if _, err := ReplaceBlock([]byte(bad), nil); !errors.Is(err, ErrNoBlock) {
			t.Errorf("%q: err = %v, want ErrNoBlock", bad, err)
		}
	}
}

func TestNum(t *testing.T) {
	for _, tc := range []struct {
		v    float64
		want string
	}{
		{45000, "45,000"}, {2812.5, "2,813"}, {3, "3"}, {13.24, "13.2"}, {0.023, "0.023"}, {0.00099, "0.00099"}, {1e9, "1,000,000,000"}, {-1234, "-1,234"},
	} {
		if got := num(tc.v); got != tc.want {
			t.Errorf("num(%v) = %s, want %s", tc.v, got, tc.want)
		}
	}
}

// TestSeededRates reads the committed rates file: it has every figure Compute needs,
// and UpdateRates writes it back byte for byte (the format others' benchmarks refresh).
func TestSeededRates(t *testing.T) {
	path := filepath.Join("..", "..", DefaultRatesFile)
	rs, err := LoadRates(path)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := measuredInputs(rs); err != nil {
		t.Fatal(err)
	}
	want, _ := os.ReadFile(path)
	tmp := filepath.Join(t.TempDir(), "rates.json")
	if err := UpdateRates(tmp, rs); err != nil {
		t.Fatal(err)
	}
	got, _ := os.ReadFile(tmp)
	if !bytes.Equal(got, want) {
		t.Errorf("%s is not in UpdateRates' format; rewritten:\n%s", path, got)
	}
}

// Command rates records figures of a `go test -bench` run in the rates file that
// `shardctl capacity` reads (internal/capacity): it reads the benchmark output on
// stdin, echoes it, and for each -set takes one metric of one benchmark as a rate, and
// optionally another benchmark's metric of the same run as its reference.
//
//	go test -run '^$' -bench . ./internal/load/ | go run ./test/bench/rates -bench 'make bench-load' \
//	    -set 'load_rows_per_s=BenchmarkLoadWindow:rows/s,ref=BenchmarkReadParquetInsert:rows/s'
//
// A benchmark named in a -set that is missing from the output is an error: a figure
// is never recorded from a run that did not measure it.
package main

import (
	"bufio"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"

	"github.com/shopsphere/shardflow/internal/capacity"
)

type sets []string

func (s *sets) String() string     { return strings.Join(*s, " ") }
func (s *sets) Set(v string) error { *s = append(*s, v); return nil }

func main() {
	if err := run(os.Args[1:], os.Stdin, os.Stdout); err != nil {
		fmt.Fprintln(os.Stderr, "rates:", err)
		os.Exit(1)
	}
}

func run(args []string, in io.Reader, out io.Writer) error {
	fs := flag.NewFlagSet("rates", flag.ContinueOnError)
	path := fs.String("rates", capacity.DefaultRatesFile, "the rates file (empty: record nothing)")
	bench := fs.String("bench", "", "the make target that measured the figures (the rates' Bench)")
	var ss sets
	fs.Var(&ss, "set", "NAME=BENCHMARK:METRIC[,ref=BENCHMARK:METRIC][,note=TEXT, last]; repeatable")
	if err := fs.Parse(args); err != nil {
		return err
	}
	metrics, err := parse(in, out)
	if err != nil {
		return err
	}
	rs := capacity.Rates{}
	for _, s := range ss {
		name, r, err := rateOf(s, metrics)
		if err != nil {
			return err
		}
		r.Bench = *bench
		rs[name] = r
	}
	if *path == "" || len(rs) == 0 {
		return nil
	}
	if !filepath.IsAbs(*path) {
		if root, err := repoRoot(); err == nil {
			*path = filepath.Join(root, *path)
		}
	}
	if err := capacity.UpdateRates(*path, rs); err != nil {
		return err
	}
	fmt.Fprintf(out, "recorded %d figure(s) in %s\n", len(rs), *path)
	return nil
}

// benchLine is one result line: name-procs, iterations, then value unit pairs.
var benchLine = regexp.MustCompile(`^(Benchmark\S+?)(?:-\d+)?\s+\d+\s+(.*)$`)

// parse echoes in to out and returns each benchmark's metrics by unit.
func parse(in io.Reader, out io.Writer) (map[string]map[string]float64, error) {
	m := map[string]map[string]float64{}
	sc := bufio.NewScanner(in)
	sc.Buffer(make([]byte, 1<<20), 1<<20)
	for sc.Scan() {
		line := sc.Text()
		fmt.Fprintln(out, line)
		g := benchLine.FindStringSubmatch(line)
		if g == nil {
			continue
		}
		f := strings.Fields(g[2])
		for i := 0; i+1 < len(f); i += 2 {
			v, err := strconv.ParseFloat(f[i], 64)
			if err != nil {
				continue
			}
			if m[g[1]] == nil {
				m[g[1]] = map[string]float64{}
			}
			m[g[1]][f[i+1]] = v
		}
	}
	return m, sc.Err()
}

// rateOf reads one -set against the parsed metrics.
func rateOf(s string, metrics map[string]map[string]float64) (string, capacity.Rate, error) {
	name, spec, ok := strings.Cut(s, "=")
	if !ok || name == "" {
		return "", capacity.Rate{}, fmt.Errorf("-set %q: want NAME=BENCHMARK:METRIC", s)
	}
	var r capacity.Rate
	spec, r.Note, _ = strings.Cut(spec, ",note=") // the note comes last and may hold commas
	for i, part := range strings.Split(spec, ",") {
		key, val := "value", part
		if i > 0 {
			var ok bool
			if key, val, ok = strings.Cut(part, "="); !ok {
				return "", r, fmt.Errorf("-set %q: %q is not ref=… or note=…", s, part)
			}
		}
		bm, unit, ok := strings.Cut(val, ":")
		if !ok {
			return "", r, fmt.Errorf("-set %q: %q is not BENCHMARK:METRIC", s, val)
		}
		v, found := metrics[bm][unit]
		if !found {
			return "", r, fmt.Errorf("-set %s: the output has no %s of %s (did the benchmark run?)", name, unit, bm)
		}
		switch key {
		case "value":
			r.Value, r.Unit = v, unit
		case "ref":
			r.Reference = v
		default:
			return "", r, fmt.Errorf("-set %q: unknown key %q", s, key)
		}
	}
	return name, r, nil
}

// repoRoot is the directory holding go.mod above the working directory.
func repoRoot() (string, error) {
	d, err := os.Getwd()
	if err != nil {
		return "", err
	}
	for {
		if _, err := os.Stat(filepath.Join(d, "go.mod")); err == nil {
			return d, nil
		}
		p := filepath.Dir(d)
		if p == d {
			return "", errors.New("no go.mod above the working directory")
		}
		d = p
	}
}

package seed

import (
	"bytes"
	"encoding/csv"
	"flag"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/shopsphere/shardflow/internal/registry"
)

// update rewrites the golden files and the committed dbt seeds:
// go test ./internal/seed -update
var update = flag.Bool("update", false, "rewrite testdata/ golden files and dbt/seeds")

const repoRoot = "../.."

func load(t *testing.T, path string) *registry.Registry {
	t.Helper()
	r, err := registry.Load(path)
	if err != nil {
		t.Fatal(err)
	}
	return r
}

func render(t *testing.T, r *registry.Registry) []File {
	t.Helper()
	files, err := Render(r)
	if err != nil {
		t.Fatal(err)
	}
	return files
}

// TestGolden pins the rendering of testdata/moves.yaml (a split and a second move of
// part of the same range) byte for byte.
func TestGolden(t *testing.T) {
	files := render(t, load(t, "testdata/moves.yaml"))
	for _, f := range files {
		if f.Name == "_seeds.yml" {
			continue // the same for every registry: TestCommittedSeedsMatchRegistry covers it
		}
		path := filepath.Join("testdata", "moves."+f.Name)
		if *update {
			if err := os.WriteFile(path, f.Data, 0o644); err != nil {
				t.Fatal(err)
			}
			continue
		}
		want, err := os.ReadFile(path)
		if err != nil {
			t.Fatalf("%v (run go test ./internal/seed -update to create it)", err)
		}
		if !bytes.Equal(want, f.Data) {
			t.Errorf("%s differs; if intended, go test ./internal/seed -update\n--- got ---\n%s", path, f.Data)
		}
	}
}

// TestCommittedSeedsMatchRegistry fails when shards.yaml changed and dbt/seeds was not
// regenerated (shardctl gen-seeds), the same check as `shardctl gen-seeds --check`.
func TestCommittedSeedsMatchRegistry(t *testing.T) {
	files := render(t, load(t, filepath.Join(repoRoot, "shards.yaml")))
	dir := filepath.Join(repoRoot, "dbt", "seeds")
	if *update {
		if _, err := Write(dir, files); err != nil {
			t.Fatal(err)
		}
	}
	stale, err := Diff(dir, files)
	if err != nil {
		t.Fatal(err)
	}
	if len(stale) > 0 {
		t.Errorf("dbt/seeds/%v out of date with shards.yaml: run `shardctl gen-seeds`", stale)
	}
}

// TestOwnershipAgreesWithRegistry reads the rendered CSV back and checks, for every
// bucket and at instants around every cutover, that exactly one row covers it and that
// its shard is registry.OwnerAt: the seed says what the Go ownership code says.
func TestOwnershipAgreesWithRegistry(t *testing.T) {
	r := load(t, "testdata/moves.yaml")
	rows := parseOwnership(t, render(t, r)[0].Data)
	instants := []time.Time{time.Date(2020, 1, 1, 0, 0, 0, 0, time.UTC)}
	for _, m := range r.Moves {
		instants = append(instants, m.Cutover.Add(-time.Microsecond), m.Cutover, m.Cutover.Add(time.Hour))
	}
	for b := 0; b < r.Routing.Buckets; b++ {
		for _, at := range instants {
			var hits []ownRow
			for _, o := range rows {
				if o.lo <= b && b <= o.hi && (o.from.IsZero() || !at.Before(o.from)) && (o.to.IsZero() || at.Before(o.to)) {
					hits = append(hits, o)
				}
			}
			want, epoch := r.OwnerAt(b, at)
			if len(hits) != 1 {
				t.Fatalf("bucket %d at %s: %d seed rows cover it, want 1", b, at, len(hits))
			}
			if hits[0].shard != want {
				t.Errorf("bucket %d at %s: seed says %s, registry says %s", b, at, hits[0].shard, want)
			}
			// the row's epoch is the epoch its interval began in, never later than now
			if hits[0].epoch > epoch {
				t.Errorf("bucket %d at %s: seed epoch %d after registry epoch %d", b, at, hits[0].epoch, epoch)
			}
		}
	}
}

func TestShardsSeed(t *testing.T) {
	got := string(render(t, load(t, "testdata/moves.yaml"))[1].Data)
	if !strings.HasPrefix(got, "shard_id,state,bucket_ranges\n") || !strings.Contains(got, "s04,active,") {
		t.Errorf("shards.csv:\n%s", got)
	}
}

func TestDiffAndWrite(t *testing.T) {
	dir := t.TempDir()
	files := []File{{"a.csv", []byte("x\n1\n")}}
	if stale, _ := Diff(dir, files); len(stale) != 1 {
		t.Fatalf("missing file not reported: %v", stale)
	}
	if changed, err := Write(dir, files); err != nil || len(changed) != 1 {
		t.Fatalf("write: %v %v", changed, err)
	}
	if stale, _ := Diff(dir, files); len(stale) != 0 {
		t.Fatalf("fresh file reported stale: %v", stale)
	}
	if changed, _ := Write(dir, files); len(changed) != 0 {
		t.Fatalf("unchanged file rewritten: %v", changed)
	}
}

type ownRow struct {
	shard    string
	lo, hi   int
	epoch    int
	from, to time.Time
}

func parseOwnership(t *testing.T, data []byte) []ownRow {
	t.Helper()
	recs, err := csv.NewReader(bytes.NewReader(data)).ReadAll()
	if err != nil {
		t.Fatal(err)
	}
	if strings.Join(recs[0], ",") != strings.Join(OwnershipHeader, ",") {
		t.Fatalf("header %v", recs[0])
	}
	var out []ownRow
	for _, r := range recs[1:] {
		o := ownRow{shard: r[0]}
		o.lo, _ = strconv.Atoi(r[1])
		o.hi, _ = strconv.Atoi(r[2])
		o.epoch, _ = strconv.Atoi(r[3])
		for i, dst := range []*time.Time{&o.from, &o.to} {
			if s := r[4+i]; s != "" {
				if *dst, err = time.Parse(time.RFC3339, s); err != nil {
					t.Fatal(err)
				}
			}
		}
		out = append(out, o)
	}
	return out
}

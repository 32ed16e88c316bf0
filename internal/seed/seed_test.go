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

	"github.com/shopsphere/shardflow/internal/genfile"
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

func render(t *testing.T, r *registry.Registry) []genfile.File {
	t.Helper()
	set, err := Render(r, t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	return set.Files
}

// TestGolden pins the rendering of testdata/moves.yaml (a split and a second move of
// part of the same range) byte for byte.
func TestGolden(t *testing.T) {
	files := render(t, load(t, "testdata/moves.yaml"))
	for _, f := range files {
		if f.Path == "_seeds.yml" {
			continue // the same for every registry: TestCommittedSeedsMatchRegistry covers it
		}
		path := filepath.Join("testdata", "moves."+f.Path)
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
	set, err := Render(load(t, filepath.Join(repoRoot, "shards.yaml")), filepath.Join(repoRoot, "dbt", "seeds"))
	if err != nil {
		t.Fatal(err)
	}
	if *update {
		if _, err := set.Write(); err != nil {
			t.Fatal(err)
		}
	}
	stale, err := set.Diff()
	if err != nil {
		t.Fatal(err)
	}
	if len(stale) > 0 {
		t.Errorf("dbt/seeds/%v out of date with shards.yaml: run `shardctl gen-seeds`", genfile.Paths(stale))
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

// Package seed renders the dbt seeds that carry shards.yaml into the warehouse: the
// ownership history (shard_ownership.csv), which the dbt ownership filter joins on
// bucket and change instant, and the shard list (shards.csv). The files are generated,
// committed under dbt/seeds and golden-tested: Render is a pure function of the
// registry, so the same shards.yaml always gives the same bytes.
package seed

import (
	"bytes"
	_ "embed"
	"encoding/csv"
	"fmt"
	"sort"
	"strconv"
	"time"

	"github.com/shopsphere/shardflow/internal/genfile"
	"github.com/shopsphere/shardflow/internal/registry"
)

// Header rows, also the column contract with dbt/seeds/_seeds.yml.
var (
	OwnershipHeader = []string{"shard_id", "bucket_lo", "bucket_hi", "epoch", "valid_from", "valid_to", "pending"}
	ShardsHeader    = []string{"shard_id", "state", "bucket_ranges"}
)

// seedsYML is the seeds' properties file (column types, descriptions, tests). It goes
// into every seed directory with the CSVs: a seed directory other than dbt/seeds (a
// local registry of another size, through SHARDFLOW_DBT_SEEDS) would otherwise load
// with inferred types, and an all-empty valid_to column would become an integer.
//
//go:embed seeds.yml
var seedsYML []byte

// Render returns every seed for r as the generated set of dir (the seed directory of
// the dbt project, or one SHARDFLOW_DBT_SEEDS points at): the CSVs in a fixed order
// and their properties file _seeds.yml last. The set owns only these files: other
// seeds may live beside them.
//
// shard_ownership.csv has one row per registry.Interval: bucket_lo..bucket_hi (inclusive)
// belonged to shard_id during [valid_from, valid_to) at registry epoch `epoch`. An empty
// valid_from means "since the beginning", an empty valid_to "still owned" (dbt loads both
// as NULL). Times are RFC 3339 in UTC, to the microsecond, each an instant of that
// shard's own clock (decisions/0017). One shard's rows never overlap; a pending move's
// target has a row from where its previous span of the buckets ended (landing kept only
// its changes after its own switch marker), so while a move is pending its buckets are
// covered by two shards' rows.
func Render(r *registry.Registry, dir string) (genfile.Set, error) {
	own, err := renderCSV(OwnershipHeader, ownershipRows(r))
	if err != nil {
		return genfile.Set{}, fmt.Errorf("render shard_ownership.csv: %w", err)
	}
	shards, err := renderCSV(ShardsHeader, shardRows(r))
	if err != nil {
		return genfile.Set{}, fmt.Errorf("render shards.csv: %w", err)
	}
	return genfile.Set{Name: "dbt seeds", Dir: dir, Files: []genfile.File{
		{Path: "shard_ownership.csv", Data: own}, {Path: "shards.csv", Data: shards}, {Path: "_seeds.yml", Data: seedsYML}}}, nil
}

func ownershipRows(r *registry.Registry) [][]string {
	ivs := r.Intervals()
	sort.SliceStable(ivs, func(i, j int) bool {
		a, b := ivs[i], ivs[j]
		if a.Shard != b.Shard {
			return a.Shard < b.Shard
		}
		if a.Lo != b.Lo {
			return a.Lo < b.Lo
		}
		return a.From.Before(b.From)
	})
	rows := make([][]string, 0, len(ivs))
	for _, iv := range ivs {
		rows = append(rows, []string{iv.Shard, strconv.Itoa(iv.Lo), strconv.Itoa(iv.Hi),
			strconv.Itoa(iv.Epoch), instant(iv.From), instant(iv.To), strconv.FormatBool(iv.Pending)})
	}
	return rows
}

func shardRows(r *registry.Registry) [][]string {
	rows := make([][]string, 0, len(r.Shards))
	for _, s := range r.Shards {
		rows = append(rows, []string{s.ID, string(s.State), registry.FormatRanges(s.Buckets)})
	}
	sort.Slice(rows, func(i, j int) bool { return rows[i][0] < rows[j][0] })
	return rows
}

func instant(t time.Time) string {
	if t.IsZero() {
		return ""
	}
	return t.UTC().Format(time.RFC3339Nano)
}

func renderCSV(header []string, rows [][]string) ([]byte, error) {
	var buf bytes.Buffer
	w := csv.NewWriter(&buf)
	if err := w.Write(header); err != nil {
		return nil, err
	}
	if err := w.WriteAll(rows); err != nil {
		return nil, err
	}
	return buf.Bytes(), nil
}

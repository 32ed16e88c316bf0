package dq

import (
	"context"
	"fmt"
	"sort"
	"strings"

	"github.com/shopsphere/shardflow/internal/window"
)

// WindowSide is a side of the completeness comparison: the rows of one table, one shard
// and one window. On the source they are the rows the shard owned at their instant; in
// the warehouse, the batch rows loaded from that shard whose watermark is in the window.
type WindowSide interface {
	// WindowChecksum returns the count and checksum (landing.Checksum) of the rows.
	WindowChecksum(ctx context.Context, table, shard string, w window.Window) (int64, string, error)
	// WindowPairs returns the (key, version) pairs of the rows, sorted by key.
	WindowPairs(ctx context.Context, table, shard string, w window.Window) ([]Pair, error)
}

// MaxKeysInDetail bounds how many keys a detail names.
const MaxKeysInDetail = 5

// Completeness compares one shard's window with the warehouse. Equal count and checksum
// pass. Otherwise it lists both sides' (key, version) pairs:
//   - a source pair missing from the warehouse is data loss: FAIL, naming up to 5 keys;
//   - a warehouse pair the source window no longer has is looked up by key on the
//     source: a newer version or a key gone from the shard is "superseded since
//     extract" (the newer version lives in a later window): PASS with a note; anything
//     else (an older or equal version elsewhere) is FAIL.
func Completeness(ctx context.Context, src *Source, wh WindowSide, table string, w window.Window) Result {
	r := Result{Check: CheckCompleteness, Shard: src.Shard, Table: table, Window: &w}
	sn, ss, err := src.WindowChecksum(ctx, table, w)
	if err != nil {
		r.Status, r.Detail = Fail, err.Error()
		return r
	}
	r.SourceCount, r.SourceChecksum = i64(sn), ss
	wn, ws, err := wh.WindowChecksum(ctx, table, src.Shard, w)
	if err != nil {
		r.Status, r.Detail = Fail, err.Error()
		return r
	}
	r.WarehouseCount, r.WarehouseChecksum = i64(wn), ws
	if sn == wn && ss == ws {
		r.Status = Pass
		return r
	}

	sp, err := src.WindowPairs(ctx, table, w)
	if err != nil {
		r.Status, r.Detail = Fail, err.Error()
		return r
	}
	wp, err := wh.WindowPairs(ctx, table, src.Shard, w)
	if err != nil {
		r.Status, r.Detail = Fail, err.Error()
		return r
	}
	missing, extra, dupes := diffPairs(sp, wp)
	var superseded, gone int
	var bad []string
	if len(extra) > 0 {
		keys := make([]string, len(extra))
		for i, p := range extra {
			keys[i] = p.Key
		}
		cur, err := src.CurrentVersions(ctx, table, keys)
		if err != nil {
			r.Status, r.Detail = Fail, err.Error()
			return r
		}
		for _, p := range extra {
			c, ok := cur[p.Key]
			switch {
			case !ok:
				gone++
			case c.Version > p.Version:
				superseded++
			default:
				bad = append(bad, fmt.Sprintf("%s v%d (source has v%d at %s)", p.Key, p.Version, c.Version, c.Watermark.UTC().Format("2006-01-02T15:04:05.999999Z")))
			}
		}
	}
	var notes []string
	if len(missing) > 0 {
		notes = append(notes, fmt.Sprintf("%d source row versions missing from the warehouse (data loss): %s", len(missing), keyList(missing)))
	}
	if len(dupes) > 0 {
		notes = append(notes, fmt.Sprintf("%d row versions loaded more than once: %s", len(dupes), keyList(dupes)))
	}
	if len(bad) > 0 {
		notes = append(notes, fmt.Sprintf("%d warehouse row versions not explained by a later change on the source: %s", len(bad), strings.Join(first(bad), ", ")))
	}
	if superseded+gone > 0 {
		notes = append(notes, fmt.Sprintf("%d warehouse row versions superseded since extract (%d by a newer version in a later window, %d deleted from the shard)", superseded+gone, superseded, gone))
	}
	r.Status = Pass
	if len(missing) > 0 || len(dupes) > 0 || len(bad) > 0 {
		r.Status = Fail
	}
	r.Detail = strings.Join(notes, "; ")
	return r
}

// diffPairs compares two key-sorted pair lists: pairs only in src, pairs only in wh,
// and pairs wh holds more than once.
func diffPairs(src, wh []Pair) (missing, extra, dupes []Pair) {
	seen := make(map[Pair]int, len(wh))
	for _, p := range wh {
		seen[p]++
	}
	for p, n := range seen {
		if n > 1 {
			dupes = append(dupes, p)
		}
	}
	inSrc := make(map[Pair]bool, len(src))
	for _, p := range src {
		inSrc[p] = true
		if seen[p] == 0 {
			missing = append(missing, p)
		}
	}
	for p := range seen {
		if !inSrc[p] {
			extra = append(extra, p)
		}
	}
	sortPairs(dupes)
	sortPairs(extra)
	return missing, extra, dupes
}

func keyList(ps []Pair) string {
	var s []string
	for _, p := range ps {
		s = append(s, fmt.Sprintf("%s v%d", p.Key, p.Version))
	}
	return strings.Join(first(s), ", ")
}

func first(s []string) []string {
	if len(s) > MaxKeysInDetail {
		return append(s[:MaxKeysInDetail:MaxKeysInDetail], fmt.Sprintf("and %d more", len(s)-MaxKeysInDetail))
	}
	return s
}

func sortPairs(ps []Pair) {
	sort.Slice(ps, func(i, j int) bool {
		if ps[i].Key != ps[j].Key {
			return ps[i].Key < ps[j].Key
		}
		return ps[i].Version < ps[j].Version
	})
}

// Package dq checks that what reached the warehouse is what the shards hold
// (docs/architecture.md, invariants 1-5): per shard and window, the source's ownership-filtered
// count and checksum (indexed queries on the shard) against the warehouse's; when they
// differ, the (key, version) pairs that explain it. Across shards: duplicate global keys
// among the latest owned versions, duplicate batch rows, rows a shard did not own, PCI
// values in the warehouse and in landed files, and freshness. Results go to the
// warehouse table dq_results and to a summary; a FAIL fails the task (exit 3).
package dq

import (
	"fmt"
	"io"
	"sort"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/shopsphere/shardflow/internal/window"
)

// Status of one check.
type Status string

// Statuses. WARN is reported and stored but does not fail the run.
const (
	Pass Status = "PASS"
	Warn Status = "WARN"
	Fail Status = "FAIL"
)

// Check names, as stored in dq_results.check_name.
const (
	CheckCompleteness    = "completeness"     // source vs warehouse count + checksum of one shard/window
	CheckDuplicateKeys   = "duplicate_keys"   // a global key's latest owned version from two shards
	CheckBatchDupes      = "batch_duplicates" // the same (key, version) loaded twice from one shard's batch files
	CheckUnownedRows     = "unowned_rows"     // rows on a shard that did not own their bucket at their instant
	CheckUnownedNow      = "unowned_now"      // rows on a shard whose bucket it does not own now (full scan)
	CheckPCIWarehouse    = "pci_leak_warehouse"
	CheckPCIFiles        = "pci_leak_files"
	CheckFreshness       = "freshness"
	CheckSourceReachable = "source_reachable"
)

// Result is one row of dq_results.
type Result struct {
	RunID             string
	Check             string
	Shard             string // "" for fleet-wide checks
	Table             string
	Window            *window.Window
	Status            Status
	SourceCount       *int64
	WarehouseCount    *int64
	SourceChecksum    string
	WarehouseChecksum string
	Detail            string // never holds a PCI value
	CheckedAt         time.Time
}

// Report is the results of one run.
type Report struct {
	RunID   string
	Results []Result
}

// Failed reports whether any check failed.
func (r *Report) Failed() bool {
	for _, x := range r.Results {
		if x.Status == Fail {
			return true
		}
	}
	return false
}

// Counts returns how many results have each status.
func (r *Report) Counts() map[Status]int {
	m := map[Status]int{}
	for _, x := range r.Results {
		m[x.Status]++
	}
	return m
}

// Summary writes one line per result and a verdict.
func (r *Report) Summary(w io.Writer) {
	res := append([]Result(nil), r.Results...)
	rank := map[Status]int{Fail: 0, Warn: 1, Pass: 2}
	sort.SliceStable(res, func(i, j int) bool { return rank[res[i].Status] < rank[res[j].Status] })
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "STATUS\tCHECK\tSHARD\tTABLE\tWINDOW\tSOURCE\tWAREHOUSE\tDETAIL")
	for _, x := range res {
		win := "-"
		if x.Window != nil {
			win = x.Window.String()
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\n", x.Status, x.Check, dash(x.Shard), dash(x.Table), win,
			count(x.SourceCount), count(x.WarehouseCount), oneLine(x.Detail))
	}
	_ = tw.Flush()
	c := r.Counts()
	verdict := "PASS"
	if c[Fail] > 0 {
		verdict = "INCOMPLETE (only unreachable shards failed; retry)"
		for _, x := range r.Results {
			if x.Status == Fail && x.Check != CheckSourceReachable {
				verdict = "FAIL"
			}
		}
	}
	fmt.Fprintf(w, "dq run %s: %s (%d pass, %d warn, %d fail)\n", r.RunID, verdict, c[Pass], c[Warn], c[Fail])
}

func dash(s string) string {
	if s == "" {
		return "-"
	}
	return s
}

func count(n *int64) string {
	if n == nil {
		return "-"
	}
	return fmt.Sprint(*n)
}

func oneLine(s string) string {
	s = strings.ReplaceAll(s, "\n", " ")
	if len(s) > 160 {
		s = s[:157] + "..."
	}
	return s
}

func i64(n int64) *int64 { return &n }

package main

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/shopsphere/shardflow/internal/capacity"
	"github.com/shopsphere/shardflow/internal/fleet"
)

var (
	// sectionLine is how test/demo.sh starts a stage: "== 4. Extract: ... ==".
	sectionLine = regexp.MustCompile(`^== (\d+)\. (.*) ==$`)
	// waitLine is the demo's wait for its last window to close (compressed time, not work).
	waitLine = regexp.MustCompile(`^waiting (\d+)s until the last window is closed`)
)

// stage is one section of the demo and how long it took.
type stage struct {
	name string
	took time.Duration
}

// runE2E runs the batch demo (test/demo.sh: fleet, traffic, extract-window for every
// shard, table and window, load into DuckDB, dq, dbt build, reconciliation of
// fact_orders with the shards, a backfill) on c.e2eShards local shards in its own
// directory and ports, times each of its sections from its output, and stops the fleet
// it started. The demo exits non-zero when fact_orders differs from the shards.
func runE2E(ctx context.Context, c config, stdout io.Writer) (capacity.Rates, error) {
	work := filepath.Join(c.dir, "e2e")
	if err := os.MkdirAll(work, 0o755); err != nil {
		return nil, err
	}
	logPath := filepath.Join(work, "demo.out")
	logf, err := os.Create(logPath)
	if err != nil {
		return nil, err
	}
	defer logf.Close()
	cmd := exec.CommandContext(ctx, "bash", filepath.Join(c.root, "test", "demo.sh"))
	cmd.Dir = c.root
	cmd.Env = append(os.Environ(), "SHARDS="+strconv.Itoa(c.e2eShards), "ORDERS="+strconv.Itoa(c.e2eOrders),
		"DEMO_VAR="+work, "BASE_PORT="+strconv.Itoa(c.e2eBasePort))
	cmd.Stderr = logf
	out, err := cmd.StdoutPipe()
	if err != nil {
		return nil, err
	}
	defer func() { _ = fleet.Down(context.WithoutCancel(ctx), filepath.Join(work, "fleet"), false) }()

	fmt.Fprintf(os.Stderr, "e2e: test/demo.sh on %d shards, %d orders (output: %s)\n", c.e2eShards, c.e2eOrders, logPath)
	st := time.Now()
	if err := cmd.Start(); err != nil {
		return nil, err
	}
	var (
		stages []stage
		cur    string
		curAt  = st
		wait   time.Duration
		keep   []string // lines worth printing: dbt, dq verdict, reconciliation
	)
	sc := bufio.NewScanner(out)
	for sc.Scan() {
		line := sc.Text()
		fmt.Fprintln(logf, line)
		now := time.Now()
		if m := sectionLine.FindStringSubmatch(line); m != nil {
			if cur != "" {
				stages = append(stages, stage{cur, now.Sub(curAt)})
			}
			cur, curAt = m[1]+". "+shortStage(m[2]), now
			continue
		}
		if m := waitLine.FindStringSubmatch(line); m != nil {
			s, _ := strconv.Atoi(m[1])
			wait = time.Duration(s) * time.Second
		}
		if strings.HasPrefix(line, "dq run") || strings.HasPrefix(line, "Done. PASS=") || strings.HasPrefix(line, "fact_orders") ||
			strings.HasPrefix(line, "  shards ") || strings.HasPrefix(line, "  fact ") || strings.HasPrefix(line, "MISMATCH") {
			keep = append(keep, line)
		}
	}
	runErr := cmd.Wait()
	wall := time.Since(st)
	if cur != "" && !strings.HasPrefix(cur, "done") {
		stages = append(stages, stage{cur, time.Since(curAt)})
	}
	if runErr != nil {
		return nil, fmt.Errorf("test/demo.sh on %d shards: %w (output: %s)", c.e2eShards, runErr, logPath)
	}

	header(stdout, fmt.Sprintf("end-to-end batch run: test/demo.sh on %d local shards (one PostgreSQL cluster each), %d orders, 1-minute windows", c.e2eShards, c.e2eOrders))
	tw := tabwriter.NewWriter(stdout, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "stage\tseconds")
	for _, s := range stages {
		note := ""
		if strings.HasPrefix(s.name, "4.") && wait > 0 {
			note = fmt.Sprintf(" (%.0fs of it waiting for the last window to close)", wait.Seconds())
		}
		fmt.Fprintf(tw, "%s\t%.1f%s\n", s.name, s.took.Seconds(), note)
	}
	fmt.Fprintf(tw, "wall\t%.1f (%.1f without the window wait)\n", wall.Seconds(), (wall - wait).Seconds())
	if err := tw.Flush(); err != nil {
		return nil, err
	}
	for _, l := range keep {
		fmt.Fprintln(stdout, l)
	}
	name := fmt.Sprintf("e2e_batch_%d_seconds", c.e2eShards)
	return capacity.Rates{name: {Value: round2((wall - wait).Seconds()), Unit: "s",
		Note: fmt.Sprintf("test/demo.sh on %d local shards, %d orders: fleet up, traffic, extract, load, dq, dbt build, reconcile, backfill; wall %.0fs minus %.0fs waiting for the last window to close; machine shared, load average %s",
			c.e2eShards, c.e2eOrders, wall.Seconds(), wait.Seconds(), loadAverage())}}, nil
}

// shortStage is a section title up to its colon ("Extract: 2 windows ..." → "Extract").
func shortStage(title string) string {
	if i := strings.IndexByte(title, ':'); i > 0 {
		return title[:i]
	}
	return title
}

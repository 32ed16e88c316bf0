package main

import (
	"fmt"
	"io"
	"text/tabwriter"
	"time"
)

// reportHead is what the table's heading says about the run.
type reportHead struct {
	shard        string
	tableRows    int64
	rate         float64
	phase        time.Duration
	at           time.Time
	load0, load1 string
}

// report prints the phases side by side with their deltas against idle.
func report(w io.Writer, h reportHead, idle *phase, phases []*phase) {
	fmt.Fprintf(w, "\nshard cost: OLTP write latency on shard %s (orders: %d rows), workload at %.0f new orders/s, phases of %s\n",
		h.shard, h.tableRows, h.rate, h.phase)
	fmt.Fprintf(w, "run %s; load average %s at start, %s at end (the machine is shared: others' load is in every phase)\n",
		h.at.Format(time.RFC3339), h.load0, h.load1)
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "phase\twrites\tp50 ms\tp99 ms\tmax ms\tΔp50 vs idle\tΔp99 vs idle\tload on the shard")
	row := func(p *phase, delta bool) {
		d50, d99 := "", ""
		if delta {
			d50 = fmt.Sprintf("%+.2f (%+.0f%%)", p.p(0.5)-idle.p(0.5), pct(p.p(0.5), idle.p(0.5)))
			d99 = fmt.Sprintf("%+.2f (%+.0f%%)", p.p(0.99)-idle.p(0.99), pct(p.p(0.99), idle.p(0.99)))
		}
		load := p.load
		if p.detail != "" {
			load += "; " + p.detail
		}
		fmt.Fprintf(tw, "%s\t%d\t%.2f\t%.2f\t%.2f\t%s\t%s\t%s\n", p.name, len(p.lat), p.p(0.5), p.p(0.99), p.max(), d50, d99, load)
	}
	for _, p := range phases {
		row(p, p.name != "idle" && p.name != "idle again")
	}
	idle.load = "the two idle phases pooled: the baseline of the deltas"
	row(idle, false)
	_ = tw.Flush()
}

func pct(v, base float64) float64 {
	if base == 0 {
		return 0
	}
	return (v - base) / base * 100
}

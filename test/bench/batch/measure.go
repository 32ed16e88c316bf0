package main

import "time"

// best is the fastest of a path's runs.
type best struct {
	rows int64
	took time.Duration
}

// keep records one run.
func (b *best) keep(rows int64, took time.Duration) {
	if b.took == 0 || took < b.took {
		b.rows, b.took = rows, took
	}
}

func (b best) rate() float64 { return float64(b.rows) / b.took.Seconds() }

// pair is one table size's figures: the reference read and extract's.
type pair struct {
	size      string // 1x, 10x
	tableRows int64
	copy      best
	extract   best
}

// ratio is extract's rate ÷ COPY's.
func (p pair) ratio() float64 { return p.extract.rate() / p.copy.rate() }

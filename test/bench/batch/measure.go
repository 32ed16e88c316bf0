package main

import (
	"context"
	"fmt"
	"io"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/shopsphere/shardflow/internal/registry"
	"github.com/shopsphere/shardflow/internal/window"
)

// copyWindow runs the reference read: the same columns and rows as extract's pages,
// in one COPY ... TO STDOUT (FORMAT binary) through the same index, discarded.
func copyWindow(ctx context.Context, conn *pgx.Conn, t registry.Table, w window.Window) (int64, time.Duration, error) {
	cols := make([]string, 0, len(t.Columns))
	for _, c := range t.Landed() {
		cols = append(cols, pgx.Identifier{c.Name}.Sanitize())
	}
	order := []string{pgx.Identifier{t.Watermark}.Sanitize()}
	for _, k := range t.PrimaryKey {
		order = append(order, pgx.Identifier{k}.Sanitize())
	}
	wm := pgx.Identifier{t.Watermark}.Sanitize()
	q := fmt.Sprintf("COPY (SELECT %s FROM %s WHERE %s >= '%s' AND %s < '%s' ORDER BY %s) TO STDOUT (FORMAT binary)",
		strings.Join(cols, ", "), pgx.Identifier{t.Name}.Sanitize(), wm, w.Start.UTC().Format(time.RFC3339Nano), wm, w.End.UTC().Format(time.RFC3339Nano), strings.Join(order, ", "))
	start := time.Now()
	tag, err := conn.PgConn().CopyTo(ctx, io.Discard, q)
	if err != nil {
		return 0, 0, fmt.Errorf("copy window %s: %w", w, err)
	}
	return tag.RowsAffected(), time.Since(start), nil
}

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

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

// result is one line of the table.
type result struct {
	size     string // 1x, 10x
	tableRow int64
	what     string
	rows     int64
	took     time.Duration
	plan     string
}

func (r result) rate() float64 { return float64(r.rows) / r.took.Seconds() }

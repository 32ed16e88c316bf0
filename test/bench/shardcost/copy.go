package main

import (
	"context"
	"fmt"
	"io"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"
)

// copyLoop reads the window the way extract-window's pages do (its landed columns,
// ordered by watermark and key, through the same index), but in one
// COPY ... TO STDOUT (FORMAT binary) discarded, again and again until ctx ends: the
// shard's side of an extract without the extractor's tokenizing and Parquet CPU, which
// on this machine competes with the shard for the same 2 cores and in production runs
// in a pod elsewhere.
func (b *bench) copyLoop(ctx context.Context) (string, error) {
	conn, err := pgx.Connect(ctx, b.shard.ExtractDSN)
	if err != nil {
		return "", fmt.Errorf("connect shard %s (extract role): %w", b.shard.ID, err)
	}
	defer conn.Close(context.WithoutCancel(ctx))
	t, _ := b.reg.Table("orders")
	var cols []string
	for _, c := range t.Landed() {
		cols = append(cols, pgx.Identifier{c.Name}.Sanitize())
	}
	wm := pgx.Identifier{t.Watermark}.Sanitize()
	order := []string{wm}
	for _, k := range t.PrimaryKey {
		order = append(order, pgx.Identifier{k}.Sanitize())
	}
	q := fmt.Sprintf("COPY (SELECT %s FROM %s WHERE %s >= '%s' AND %s < '%s' ORDER BY %s) TO STDOUT (FORMAT binary)",
		strings.Join(cols, ", "), pgx.Identifier{t.Name}.Sanitize(), wm, b.window.Start.Format(time.RFC3339Nano), wm, b.window.End.Format(time.RFC3339Nano), strings.Join(order, ", "))
	var runs int
	var rows int64
	var busy time.Duration
	for ctx.Err() == nil {
		st := time.Now()
		tag, err := conn.PgConn().CopyTo(ctx, io.Discard, q)
		if ctx.Err() != nil {
			break
		}
		if err != nil {
			return "", fmt.Errorf("copy window %s: %w", b.window, err)
		}
		runs++
		rows += tag.RowsAffected()
		busy += time.Since(st)
	}
	if runs == 0 {
		return "no COPY finished within the phase", nil
	}
	return fmt.Sprintf("%d runs finished (+1 cut off), %.0f rows/s", runs, float64(rows)/busy.Seconds()), nil
}

package main

import (
	"context"
	"fmt"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/shopsphere/shardflow/internal/extract/extracttest"
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
	var runs int
	var rows int64
	var busy time.Duration
	for ctx.Err() == nil {
		n, took, err := extracttest.CopyWindow(ctx, conn, t, b.window)
		if ctx.Err() != nil {
			break
		}
		if err != nil {
			return "", err
		}
		runs++
		rows += n
		busy += took
	}
	if runs == 0 {
		return "no COPY finished within the phase", nil
	}
	return fmt.Sprintf("%d runs finished (+1 cut off), %.0f rows/s", runs, float64(rows)/busy.Seconds()), nil
}

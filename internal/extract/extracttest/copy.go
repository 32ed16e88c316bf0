package extracttest

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

// CopyWindow runs the benchmarks' reference read of a window: the columns and rows
// extract-window lands (t.Landed(), the window on the watermark), ordered by
// (watermark, primary key) so it reads through the same index, in one
// COPY ... TO STDOUT (FORMAT binary) into io.Discard. It returns the rows copied and
// the time taken. It does no ownership filtering, tokenizing or writing: it is the
// floor extract's rate is compared with.
func CopyWindow(ctx context.Context, conn *pgx.Conn, t registry.Table, w window.Window) (int64, time.Duration, error) {
	cols := make([]string, 0, len(t.Columns))
	for _, c := range t.Landed() {
		cols = append(cols, pgx.Identifier{c.Name}.Sanitize())
	}
	wm := pgx.Identifier{t.Watermark}.Sanitize()
	order := []string{wm}
	for _, k := range t.PrimaryKey {
		order = append(order, pgx.Identifier{k}.Sanitize())
	}
	q := fmt.Sprintf("COPY (SELECT %s FROM %s WHERE %s >= '%s' AND %s < '%s' ORDER BY %s) TO STDOUT (FORMAT binary)",
		strings.Join(cols, ", "), pgx.Identifier{t.Name}.Sanitize(), wm, w.Start.UTC().Format(time.RFC3339Nano),
		wm, w.End.UTC().Format(time.RFC3339Nano), strings.Join(order, ", "))
	start := time.Now()
	tag, err := conn.PgConn().CopyTo(ctx, io.Discard, q)
	if err != nil {
		return 0, 0, fmt.Errorf("copy window %s: %w", w, err)
	}
	return tag.RowsAffected(), time.Since(start), nil
}

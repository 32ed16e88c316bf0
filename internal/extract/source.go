package extract

import (
	"context"
	"fmt"
	"strings"

	"github.com/jackc/pgx/v5"
)

// sourceSum is the source side of the self-check: count and checksum of the window's
// rows the shard owned (Queries.Checksum), or the error that prevented it.
type sourceSum struct {
	rows int64
	sum  string
	err  error
}

// exportSnapshot names tx's snapshot (pg_export_snapshot) for sourceChecksum, and turns
// JIT compilation off in tx: the page and checksum statements are plain index reads
// whose cost estimates can pass jit_above_cost, and compiling them costs more than it
// saves (tens of milliseconds a statement).
func exportSnapshot(ctx context.Context, tx pgx.Tx) (string, error) {
	if _, err := tx.Exec(ctx, "SET LOCAL jit = off"); err != nil {
		return "", err
	}
	var id string
	if err := tx.QueryRow(ctx, "SELECT pg_export_snapshot()").Scan(&id); err != nil {
		return "", err
	}
	if id == "" || strings.Trim(id, "0123456789ABCDEFabcdef-") != "" {
		return "", fmt.Errorf("pg_export_snapshot returned %q", id)
	}
	return id, nil
}

// sourceChecksum computes the self-check's source side on a second connection to the
// shard (the extract connection's config) that imports snapshot, the run's
// REPEATABLE READ snapshot (SET TRANSACTION SNAPSHOT): the same rows as the pages
// read, counted while they are read instead of before. The exporting transaction must
// stay open until the result is received. The result arrives on the returned channel,
// which is buffered: the goroutine ends, and closes its connection, whether or not it
// is received; cancel ctx to stop it early.
func (e *Extractor) sourceChecksum(ctx context.Context, j Job, q *Queries, snapshot string) <-chan sourceSum {
	out := make(chan sourceSum, 1)
	cfg := e.Conn.Config() // a copy, taken before the pages use the connection
	go func() {
		s := sourceSum{}
		s.rows, s.sum, s.err = checksumInSnapshot(ctx, cfg, snapshot, q.Checksum, j)
		if s.err != nil {
			s.err = classify(fmt.Errorf("%s: source checksum: %w", j, s.err))
		}
		out <- s
	}()
	return out
}

// checksumInSnapshot connects with cfg, imports snapshot in a read-only REPEATABLE READ
// transaction and runs query (Queries.Checksum) over j's window.
func checksumInSnapshot(ctx context.Context, cfg *pgx.ConnConfig, snapshot, query string, j Job) (int64, string, error) {
	conn, err := pgx.ConnectConfig(ctx, cfg)
	if err != nil {
		return 0, "", fmt.Errorf("second connection: %w", err)
	}
	defer conn.Close(context.WithoutCancel(ctx))
	tx, err := conn.BeginTx(ctx, pgx.TxOptions{IsoLevel: pgx.RepeatableRead, AccessMode: pgx.ReadOnly})
	if err != nil {
		return 0, "", err
	}
	defer func() { _ = tx.Rollback(context.WithoutCancel(ctx)) }()
	// the snapshot id is checked by exportSnapshot: hex digits and dashes
	if _, err := tx.Exec(ctx, "SET TRANSACTION SNAPSHOT '"+snapshot+"'"); err != nil {
		return 0, "", fmt.Errorf("import snapshot %s: %w", snapshot, err)
	}
	if _, err := tx.Exec(ctx, "SET LOCAL jit = off"); err != nil {
		return 0, "", err
	}
	var rows int64
	var sum string
	if err := tx.QueryRow(ctx, query, j.Window.Start, j.Window.End).Scan(&rows, &sum); err != nil {
		return 0, "", err
	}
	return rows, sum, nil
}

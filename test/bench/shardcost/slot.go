package main

import (
	"context"
	"fmt"
	"net/url"
	"os"
	"os/exec"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/shopsphere/shardflow/internal/fleet"
)

// slot is the logical replication slot whose backlog the CDC phase drains.
type slot struct {
	name     string
	shard    fleet.Shard
	lsnStart string
}

// publication is the one the fleet's schema creates for Debezium (docs/cdc.md).
const publication = "shardflow_cdc"

func newSlot(ctx context.Context, admin *pgx.Conn, sh fleet.Shard) (*slot, error) {
	s := &slot{name: "bench_shardcost", shard: sh}
	if err := admin.QueryRow(ctx, "SELECT lsn::text FROM pg_create_logical_replication_slot($1, 'pgoutput')", s.name).Scan(&s.lsnStart); err != nil {
		return nil, fmt.Errorf("create slot %s on shard %s: %w", s.name, sh.ID, err)
	}
	return s, nil
}

func (s *slot) drop(ctx context.Context, admin *pgx.Conn) {
	_, _ = admin.Exec(ctx, "SELECT pg_drop_replication_slot($1)", s.name)
}

// drain runs pg_recvlogical (pgoutput, the publication Debezium reads) from the slot to
// the WAL position at its start, or until ctx ends, and says how much it read.
func (s *slot) drain(ctx context.Context, admin *pgx.Conn) (string, error) {
	var end string
	var backlog int64
	if err := admin.QueryRow(ctx, `SELECT pg_current_wal_lsn()::text, pg_wal_lsn_diff(pg_current_wal_lsn(), confirmed_flush_lsn)::bigint
		FROM pg_replication_slots WHERE slot_name = $1`, s.name).Scan(&end, &backlog); err != nil {
		return "", fmt.Errorf("slot %s backlog: %w", s.name, err)
	}
	// The password goes through the environment, not the command line.
	u, err := url.Parse(s.shard.ReplicationDSN)
	if err != nil {
		return "", fmt.Errorf("replication DSN of shard %s: %w", s.shard.ID, err)
	}
	pw, _ := u.User.Password()
	u.User = url.User(u.User.Username())
	st := time.Now()
	cmd := exec.CommandContext(ctx, "pg_recvlogical", "-d", u.String(), "--slot", s.name, "--start", "--endpos", end, "--no-loop",
		"-o", "proto_version=1", "-o", "publication_names="+publication, "-f", os.DevNull)
	cmd.Env = append(os.Environ(), "PGPASSWORD="+pw)
	out, err := cmd.CombinedOutput()
	took := time.Since(st)
	if ctx.Err() != nil {
		return fmt.Sprintf("%.0f MB of WAL behind the slot, not drained within the phase", float64(backlog)/1e6), nil
	}
	if err != nil {
		return "", fmt.Errorf("pg_recvlogical on shard %s slot %s: %w: %s", s.shard.ID, s.name, err, strings.TrimSpace(string(out)))
	}
	return fmt.Sprintf("drained %.0f MB of WAL in %s (%.0f MB/s); the phase's sample ends there", float64(backlog)/1e6, took.Round(time.Millisecond), float64(backlog)/1e6/took.Seconds()), nil
}

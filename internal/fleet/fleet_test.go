package fleet_test

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/shopsphere/shardflow/internal/fleet"
	"github.com/shopsphere/shardflow/internal/fleet/fleettest"
)

func connect(t *testing.T, dsn string) *pgx.Conn {
	t.Helper()
	c, err := pgx.Connect(context.Background(), dsn)
	if err != nil {
		t.Fatalf("connect: %v", err)
	}
	t.Cleanup(func() { c.Close(context.Background()) })
	return c
}

// The fleet has one cluster per shard, each with the schema shards.yaml declares, the
// roles of the contract, and logical WAL.
func TestStartMatchesRegistry(t *testing.T) {
	reg := fleettest.Load(t, "../../shards.yaml")
	f := fleettest.Start(t, reg)
	ctx := context.Background()
	if len(f.Shards) != len(reg.Shards) {
		t.Fatalf("fleet has %d shards, registry %d", len(f.Shards), len(reg.Shards))
	}
	ports := map[int]bool{}
	for _, s := range f.Shards {
		if ports[s.Port] {
			t.Errorf("port %d used twice", s.Port)
		}
		ports[s.Port] = true
		admin := connect(t, s.AdminDSN)
		var wal string
		if err := admin.QueryRow(ctx, "SHOW wal_level").Scan(&wal); err != nil || wal != "logical" {
			t.Errorf("shard %s: wal_level %q, %v", s.ID, wal, err)
		}
		// Columns match shards.yaml, in order and type.
		for _, tb := range reg.Tables {
			rows, err := admin.Query(ctx, `SELECT column_name, CASE WHEN data_type = 'timestamp with time zone' THEN 'timestamptz' ELSE data_type END
				FROM information_schema.columns WHERE table_name = $1 ORDER BY ordinal_position`, tb.Name)
			if err != nil {
				t.Fatal(err)
			}
			var got []string
			for rows.Next() {
				var n, ty string
				if err := rows.Scan(&n, &ty); err != nil {
					t.Fatal(err)
				}
				got = append(got, n+" "+ty)
			}
			rows.Close()
			var want []string
			for _, c := range tb.Columns {
				want = append(want, c.Name+" "+c.Type)
			}
			if strings.Join(got, ",") != strings.Join(want, ",") {
				t.Errorf("shard %s table %s columns\n got %v\nwant %v", s.ID, tb.Name, got, want)
			}
			var ident string
			if err := admin.QueryRow(ctx, "SELECT relreplident::text FROM pg_class WHERE relname = $1", tb.Name).Scan(&ident); err != nil || ident != "f" {
				t.Errorf("shard %s table %s: replica identity %q (want f = FULL), %v", s.ID, tb.Name, ident, err)
			}
			var idx int
			if err := admin.QueryRow(ctx, "SELECT count(*) FROM pg_indexes WHERE indexname = $1", tb.Name+"_watermark_idx").Scan(&idx); err != nil || idx != 1 {
				t.Errorf("shard %s: index %s_watermark_idx missing", s.ID, tb.Name)
			}
		}
		// The extract role reads but cannot write, and sees other sessions' xact_start.
		ex := connect(t, s.ExtractDSN)
		if _, err := ex.Exec(ctx, "SELECT count(*) FROM payments"); err != nil {
			t.Errorf("shard %s: extract cannot read: %v", s.ID, err)
		}
		if _, err := ex.Exec(ctx, "UPDATE orders SET status = 'x'"); err == nil {
			t.Errorf("shard %s: the extract role can write", s.ID)
		}
		var stats bool
		if err := ex.QueryRow(ctx, "SELECT pg_has_role('pg_read_all_stats', 'member')").Scan(&stats); err != nil || !stats {
			t.Errorf("shard %s: extract role is not in pg_read_all_stats", s.ID)
		}
		// The replication role opens a logical walsender connection.
		rc := connect(t, s.ReplicationDSN+"&replication=database")
		if _, err := rc.PgConn().Exec(ctx, "IDENTIFY_SYSTEM").ReadAll(); err != nil {
			t.Errorf("shard %s: replication role: IDENTIFY_SYSTEM: %v", s.ID, err)
		}
	}
	env := f.Env()
	for _, s := range reg.Shards {
		if env[s.Connection.Extract.Env] == "" || env[s.Connection.Replication.Env] == "" || env[fleet.AdminEnvName(s.ID)] == "" {
			t.Errorf("shard %s: env lacks a DSN: %v", s.ID, keys(env))
		}
	}
}

// The trigger stamps updated_at with the transaction's start and counts versions.
func TestStampTrigger(t *testing.T) {
	reg := fleettest.Load(t, "../../shards.yaml")
	f := fleettest.Start(t, reg)
	ctx := context.Background()
	c := connect(t, f.Shards[0].AdminDSN)
	tx, err := c.Begin(ctx)
	if err != nil {
		t.Fatal(err)
	}
	var start time.Time
	if err := tx.QueryRow(ctx, "SELECT now()").Scan(&start); err != nil {
		t.Fatal(err)
	}
	time.Sleep(20 * time.Millisecond)
	if _, err := tx.Exec(ctx, `INSERT INTO orders (order_id, customer_id, bucket, status, currency, region, total_cents, updated_at, row_version)
		VALUES ('0190a000-0000-7000-8000-000000000001', 1, 2066, 'placed', 'EUR', 'eu-west', 100, '2000-01-01', 99)`); err != nil {
		t.Fatal(err)
	}
	if err := tx.Commit(ctx); err != nil {
		t.Fatal(err)
	}
	var wm time.Time
	var v int64
	if err := c.QueryRow(ctx, "SELECT updated_at, row_version FROM orders").Scan(&wm, &v); err != nil {
		t.Fatal(err)
	}
	if !wm.Equal(start) || v != 1 {
		t.Errorf("after insert: updated_at %v row_version %d, want %v and 1", wm, v, start)
	}
	if _, err := c.Exec(ctx, "UPDATE orders SET status = 'paid'"); err != nil {
		t.Fatal(err)
	}
	if err := c.QueryRow(ctx, "SELECT updated_at, row_version FROM orders").Scan(&wm, &v); err != nil {
		t.Fatal(err)
	}
	if !wm.After(start) || v != 2 {
		t.Errorf("after update: updated_at %v row_version %d, want > %v and 2", wm, v, start)
	}
}

// Up is idempotent: a second Up reuses clusters, ports and passwords; after Stop, Up
// starts the same clusters with their data; Down --purge removes everything.
func TestUpIdempotentStopStartDown(t *testing.T) {
	reg := fleettest.Load(t, "../../shards.yaml")
	ctx := context.Background()
	dir, err := os.MkdirTemp("", "shardflow-fleet-test-")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = fleet.Down(context.Background(), dir, true) })
	if err := os.Chmod(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	fdir := filepath.Join(dir, "var", "fleet") // var/ does not exist yet, as in a fresh checkout
	base := freeBase(t, len(reg.Shards))
	cfg := fleet.Config{Dir: fdir, BasePort: base, Registry: reg, Fast: true}
	f1, err := fleet.Up(ctx, cfg)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := pgx.Connect(ctx, f1.Shards[1].AdminDSN); err != nil {
		t.Fatal(err)
	}
	c := connect(t, f1.Shards[1].AdminDSN)
	if _, err := c.Exec(ctx, `INSERT INTO shardflow_heartbeat VALUES (1, now())`); err != nil {
		t.Fatal(err)
	}
	c.Close(ctx)

	f2, err := fleet.Up(ctx, cfg)
	if err != nil {
		t.Fatalf("second up: %v", err)
	}
	for i := range f1.Shards {
		if f1.Shards[i] != f2.Shards[i] {
			t.Errorf("second up changed shard %d:\n %+v\n %+v", i, f1.Shards[i], f2.Shards[i])
		}
		if f1.Shards[i].Port != base+i {
			t.Errorf("shard %s on port %d, want %d", f1.Shards[i].ID, f1.Shards[i].Port, base+i)
		}
	}
	env, err := os.ReadFile(fleet.EnvFile(fdir))
	if err != nil || !strings.Contains(string(env), "export SHARDFLOW_S00_EXTRACT_DSN='postgres://shardflow_extract:") {
		t.Errorf("fleet.env: %v\n%s", err, redacted(env))
	}

	if err := f2.Stop(ctx); err != nil {
		t.Fatal(err)
	}
	st, err := f2.Status(ctx)
	if err != nil {
		t.Fatal(err)
	}
	for _, s := range st {
		if s.Running {
			t.Errorf("shard %s runs after Stop", s.ID)
		}
	}
	f3, err := fleet.Up(ctx, fleet.Config{Dir: fdir, BasePort: base, Registry: reg, Fast: true})
	if err != nil {
		t.Fatalf("up after stop: %v", err)
	}
	var n int
	if err := connect(t, f3.Shards[1].AdminDSN).QueryRow(ctx, "SELECT count(*) FROM shardflow_heartbeat").Scan(&n); err != nil || n != 1 {
		t.Errorf("data after restart: %d rows, %v", n, err)
	}
	st, err = f3.Status(ctx)
	if err != nil {
		t.Fatal(err)
	}
	for _, s := range st {
		if !s.Running || s.Err != nil || s.Rows == nil {
			t.Errorf("status after up: %+v", s)
		}
	}

	// A different port for an existing shard is refused, not silently ignored.
	if _, err := fleet.Up(ctx, fleet.Config{Dir: fdir, Ports: map[string]int{"s00": base + 50}, Registry: reg}); err == nil {
		t.Error("up with a changed port succeeded")
	}

	if err := fleet.Down(ctx, fdir, true); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(fdir); !os.IsNotExist(err) {
		t.Errorf("down --purge left %s: %v", fdir, err)
	}
	if _, err := pgx.Connect(ctx, f3.Shards[0].AdminDSN); err == nil {
		t.Error("shard still accepts connections after down")
	}
}

// freeBase finds n consecutive free ports outside the default fleet's range.
func freeBase(t *testing.T, n int) int {
	t.Helper()
	for base := 42000 + os.Getpid()%2000*5; base < 65000; base += 97 {
		if fleettest.PortsFree(base, n) {
			return base
		}
	}
	t.Fatal("no free port range")
	return 0
}

func keys(m map[string]string) []string {
	var out []string
	for k := range m {
		out = append(out, k)
	}
	return out
}

func redacted(b []byte) string {
	var out []string
	for _, l := range strings.Split(string(b), "\n") {
		if i := strings.Index(l, "="); i > 0 {
			l = l[:i] + "=…"
		}
		out = append(out, l)
	}
	return strings.Join(out, "\n")
}

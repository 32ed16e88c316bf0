package snowflake_test

import (
	"flag"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/shopsphere/shardflow/internal/landing"
	"github.com/shopsphere/shardflow/internal/registry"
	"github.com/shopsphere/shardflow/internal/warehouse/snowflake"
	"github.com/shopsphere/shardflow/internal/window"
)

var update = flag.Bool("update", false, "rewrite the golden files in testdata/")

// productionConfig is the production environment of the repository's shards.yaml.
func productionConfig(t *testing.T) (*registry.Registry, snowflake.Config) {
	t.Helper()
	reg, err := registry.Load(filepath.Join("..", "..", "..", "shards.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	env, err := reg.Environment("production")
	if err != nil {
		t.Fatal(err)
	}
	cfg := snowflake.Config{Database: env.Warehouse.Database, Schema: env.Warehouse.Schema, Stage: env.Warehouse.Stage}
	if err := cfg.Validate(); err != nil {
		t.Fatal(err)
	}
	return reg, cfg
}

func golden(t *testing.T, name, got string) {
	t.Helper()
	p := filepath.Join("testdata", name)
	if *update {
		if err := os.MkdirAll("testdata", 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, []byte(got), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	want, err := os.ReadFile(p)
	if err != nil {
		t.Fatalf("%v (run go test -update to create it)", err)
	}
	if string(want) != got {
		t.Fatalf("%s differs from the generated SQL (go test ./internal/warehouse/snowflake -update to accept):\n%s", p, got)
	}
}

// TestGoldenSQL pins every statement the production load runs.
func TestGoldenSQL(t *testing.T) {
	reg, cfg := productionConfig(t)
	ddl, err := snowflake.EnsureSQL(cfg, reg.Tables)
	if err != nil {
		t.Fatal(err)
	}
	golden(t, "ensure.sql", strings.Join(ddl, ";\n\n")+";\n")

	// a raw orders table created before _absent_columns existed, and a column being
	// rolled out declared since: Ensure adds both (docs/runbooks/schema-change.md)
	ords, _ := reg.Table("orders")
	ords.Columns = append(append([]registry.Column(nil), ords.Columns...), registry.Column{Name: "gift_note", Type: "text", Adding: true})
	have := map[string]bool{}
	for _, c := range landing.Columns(ords) {
		have[c.Name] = c.Name != landing.ColAbsent && c.Name != "gift_note"
	}
	have["_file"], have["_loaded_at"] = true, true
	add, err := snowflake.AddColumnsSQL(cfg, ords, have)
	if err != nil {
		t.Fatal(err)
	}
	golden(t, "add_columns.sql", "-- "+snowflake.ColumnsSQL(cfg, reg.Tables)+";\n\n"+strings.Join(add, ";\n")+";\n")

	orders, _ := reg.Table("orders")
	t0 := time.Date(2026, 11, 24, 10, 0, 0, 0, time.UTC)
	t1 := t0.Add(time.Hour)
	m := &landing.Manifest{Format: 1, Table: "orders", Shard: "s03", Source: landing.Batch, WindowStart: &t0, WindowEnd: &t1,
		Rows: 1234, Checksum: "987654321098765432", DataKey: landing.BatchKey("orders", "s03", t0, t1),
		DataSHA256: "9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08", Columns: landing.Columns(orders)}
	l, err := snowflake.LoadSQL(cfg, orders, m)
	if err != nil {
		t.Fatal(err)
	}
	var b strings.Builder
	b.WriteString("-- one transaction per file; see internal/warehouse/snowflake.LoadFile\n")
	for _, s := range []struct{ name, sql string }{
		{"lock and drop the key's old rows", l.Delete},
		{"history, read after the lock (skip when the sha is the same)", l.Lookup},
		{"load", l.Copy},
		{"verify against the manifest (rows 1234, checksum 987654321098765432)", l.Verify},
		{"history entry", l.HistoryDelete},
		{"", l.History},
	} {
		if s.name != "" {
			b.WriteString("\n-- " + s.name + "\n")
		}
		b.WriteString(s.sql + ";\n")
	}
	b.WriteString("\n-- window checksum (dq)\n")
	b.WriteString("SELECT ... WHERE " + snowflake.WindowWhere(orders, "s03", window.Window{Start: t0, End: t1}) + ";\n")
	golden(t, "load_orders.sql", b.String())

	cdc := *m
	p := int32(2)
	cdc.Source, cdc.Partition, cdc.WindowStart, cdc.WindowEnd = landing.CDC, &p, nil, nil
	cdc.DataKey = landing.CDCKey("orders", "s03", 2, 100, 199, t0)
	lc, err := snowflake.LoadSQL(cfg, orders, &cdc)
	if err != nil {
		t.Fatal(err)
	}
	golden(t, "copy_orders_cdc.sql", lc.Copy+";\n")

	bad := *m
	bad.DataKey = "landing/orders/x'; DROP TABLE RAW.orders; --.parquet"
	if _, err := snowflake.LoadSQL(cfg, orders, &bad); err == nil {
		t.Fatal("a data key with a quote was accepted")
	}
}

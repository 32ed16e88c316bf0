package snowflake_test

import (
	"context"
	"os"
	"path/filepath"
	"regexp"
	"sort"
	"strings"
	"testing"

	"github.com/shopsphere/shardflow/internal/registry"
	"github.com/shopsphere/shardflow/internal/warehouse/snowflake"
)

const testRoleARN = "arn:aws:iam::123456789012:role/shardflow-snowflake"

// productionBootstrap is the default bootstrap of shards.yaml's production environment.
func productionBootstrap(t *testing.T) (snowflake.Bootstrap, []snowflake.Statement) {
	t.Helper()
	reg, err := registry.Load("../../../shards.yaml")
	if err != nil {
		t.Fatal(err)
	}
	e, err := reg.Environment("production")
	if err != nil {
		t.Fatal(err)
	}
	b := snowflake.DefaultBootstrap
	b.AWSRoleARN = testRoleARN
	stmts, err := snowflake.BootstrapSQL(e, b)
	if err != nil {
		t.Fatal(err)
	}
	return b, stmts
}

// TestBootstrapGolden: the bootstrap of shards.yaml's production environment, as
// `shardctl warehouse plan` prints it, is pinned in testdata/bootstrap.sql.
func TestBootstrapGolden(t *testing.T) {
	b, stmts := productionBootstrap(t)
	got := snowflake.FormatBootstrap(stmts)
	golden(t, "bootstrap.sql", got)
	for _, s := range stmts {
		if !strings.Contains(s.SQL, "IF NOT EXISTS") && !strings.HasPrefix(s.SQL, "GRANT ") && !strings.HasPrefix(s.SQL, "ALTER WAREHOUSE ") {
			t.Errorf("not idempotent: %s", s.SQL)
		}
	}
	// the analysts' role reads no raw, staging or intermediate schema
	for _, s := range stmts {
		if strings.HasSuffix(s.SQL, "TO ROLE "+b.AnalystRole) && regexp.MustCompile(`\.(RAW|STAGING|INTERMEDIATE|AUDIT)\b`).MatchString(s.SQL) {
			t.Errorf("analysts granted beyond the marts: %s", s.SQL)
		}
	}
}

// TestBootstrapSchemasAreDBTs: the dbt schemas granted are dbt_project.yml's.
func TestBootstrapSchemasAreDBTs(t *testing.T) {
	data, err := os.ReadFile(filepath.Join("..", "..", "..", "dbt", "dbt_project.yml"))
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	for _, m := range regexp.MustCompile(`\+schema:\s*(\w+)`).FindAllStringSubmatch(string(data), -1) {
		got = append(got, strings.ToUpper(m[1]))
	}
	want := append([]string(nil), snowflake.DBTSchemas...)
	sort.Strings(got)
	sort.Strings(want)
	if strings.Join(got, ",") != strings.Join(want, ",") {
		t.Errorf("dbt_project.yml schemas %v, snowflake.DBTSchemas %v", got, want)
	}
}

// TestBootstrapRefusesWhatItCannotSetUp: a clear error, naming the setting.
func TestBootstrapRefusesWhatItCannotSetUp(t *testing.T) {
	sf := registry.Warehouse{Kind: "snowflake", Database: "ANALYTICS", Schema: "RAW", Stage: "RAW.LANDING_STAGE"}
	s3 := registry.ObjectStore{Kind: "s3", Bucket: "b", Prefix: "p"}
	b := snowflake.DefaultBootstrap
	b.AWSRoleARN = testRoleARN
	for _, c := range []struct {
		e    registry.Environment
		arn  string
		want string
	}{
		{registry.Environment{Warehouse: registry.Warehouse{Kind: "duckdb"}, ObjectStore: s3}, testRoleARN, `warehouse.kind is "duckdb"`},
		{registry.Environment{Warehouse: sf, ObjectStore: registry.ObjectStore{Kind: "dir"}}, testRoleARN, `object_store.kind is "dir"`},
		{registry.Environment{Warehouse: sf, ObjectStore: s3}, "", "give --aws-role-arn"},
		{registry.Environment{Warehouse: sf, ObjectStore: s3}, "arn:aws:iam::12:role/x", "not an IAM role ARN"},
	} {
		b.AWSRoleARN = c.arn
		if _, err := snowflake.BootstrapSQL(&c.e, b); err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("%+v: %v, want %q", c.e, err, c.want)
		}
	}
}

// onStandIn says which bootstrap statements fakesnow runs: the database, the schemas and
// the stage. It parses no storage integration, resource monitor, warehouse, role or
// grant (each is a parser error there): those are pinned by the golden file only.
func onStandIn(s snowflake.Statement) bool {
	for _, p := range []string{"CREATE DATABASE ", "CREATE SCHEMA ", "CREATE STAGE "} {
		if strings.HasPrefix(s.SQL, p) {
			return true
		}
	}
	return false
}

// TestBootstrapOnFakesnow applies what the stand-in can run through ApplyBootstrap (with
// its USE ROLE switches), then again: the second time changes nothing; the schemas exist.
func TestBootstrapOnFakesnow(t *testing.T) {
	w := fakesnow.Open(t, t.TempDir())
	defer w.Close()
	_, all := productionBootstrap(t)
	var stmts []snowflake.Statement
	for _, s := range all {
		if onStandIn(s) {
			stmts = append(stmts, s)
		}
	}
	ctx := context.Background()
	conn, err := w.DB().Conn(ctx)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	if n, err := snowflake.ApplyBootstrap(ctx, conn, stmts, nil); err != nil {
		t.Fatalf("apply: statement %d: %v", n+1, err)
	}
	// again: fakesnow answers a CREATE DATABASE IF NOT EXISTS of an existing database
	// with HTTP 500 (a stand-in bug; Snowflake does nothing), so the rest only
	if n, err := snowflake.ApplyBootstrap(ctx, conn, stmts[1:], nil); err != nil {
		t.Fatalf("apply again: statement %d: %v", n+2, err)
	}
	var n int
	if err := w.DB().QueryRowContext(ctx, "SELECT count(*) FROM ANALYTICS.INFORMATION_SCHEMA.SCHEMATA WHERE schema_name IN ('RAW', 'DQ', 'REGISTRY', 'STAGING', 'INTERMEDIATE', 'ANALYTICS', 'FINANCE', 'AUDIT')").Scan(&n); err != nil {
		t.Fatal(err)
	}
	if n != 8 {
		t.Errorf("%d of the 8 schemas exist after the bootstrap", n)
	}
	t.Logf("on fakesnow: %d of %d bootstrap statements (database, schemas, stage), applied again; golden only: %d (integration, monitor, warehouses, roles, grants)", len(stmts), len(all), len(all)-len(stmts))
}

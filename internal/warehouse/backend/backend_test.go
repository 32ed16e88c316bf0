package backend

import (
	"context"
	"path/filepath"
	"strings"
	"testing"

	"github.com/shopsphere/shardflow/internal/exitcode"
	"github.com/shopsphere/shardflow/internal/landing"
	"github.com/shopsphere/shardflow/internal/registry"
)

func TestOpenDuckDB(t *testing.T) {
	ctx := context.Background()
	w, err := Open(ctx, registry.Warehouse{Kind: "duckdb", Path: filepath.Join(t.TempDir(), "sub", "wh.duckdb")}, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer w.Close()
	if w.Dialect != landing.DuckDB || w.Raw != "raw" || w.Qualify("dq.dq_results") != "dq.dq_results" {
		t.Fatalf("opened %+v", w)
	}
	if err := w.DB().PingContext(ctx); err != nil {
		t.Fatal(err)
	}
}

// TestOpenRefuses: settings that cannot work are usage errors (exit 2) that name what is
// wrong, before any connection is tried; the DSN's value is never in the message.
func TestOpenRefuses(t *testing.T) {
	ctx := context.Background()
	for _, tc := range []struct {
		cfg  registry.Warehouse
		env  map[string]string
		want string
	}{
		{registry.Warehouse{Kind: "bigquery"}, nil, `kind "bigquery" is not one of duckdb, snowflake`},
		{registry.Warehouse{Kind: "snowflake", DSN: registry.SecretRef{Env: "SF_DSN"}, Schema: "RAW", Stage: "LANDING"}, nil, "SF_DSN (the snowflake DSN) is not set"},
		{registry.Warehouse{Kind: "snowflake", DSN: registry.SecretRef{Env: "SF_DSN"}, Stage: "LANDING"}, map[string]string{"SF_DSN": "u:secret-pw@acct/db"}, "schema"},
	} {
		_, err := Open(ctx, tc.cfg, tc.env)
		if exitcode.Of(err) != exitcode.Usage || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("Open(%+v) = exit %d %v, want exit %d with %q", tc.cfg, exitcode.Of(err), err, exitcode.Usage, tc.want)
		}
		if err != nil && strings.Contains(err.Error(), "secret-pw") {
			t.Errorf("the error holds the DSN: %v", err)
		}
	}
}

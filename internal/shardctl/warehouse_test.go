package shardctl

import (
	"bytes"
	"context"
	"strings"
	"testing"

	"github.com/shopsphere/shardflow/internal/exitcode"
)

// warehouse plan prints the bootstrap of the production environment; it refuses the
// local one (DuckDB) and a missing ARN with a usage error naming the setting; apply
// without the admin DSN names the variable.
func TestWarehousePlan(t *testing.T) {
	ctx := context.Background()
	run := func(vars map[string]string, args ...string) (string, error) {
		var out bytes.Buffer
		err := Run(ctx, Env{Registry: "../../shards.yaml", Name: "local", Vars: vars, Stdout: &out, Stderr: &out}, args)
		return out.String(), err
	}
	arn := "--aws-role-arn=arn:aws:iam::123456789012:role/shardflow-snowflake"
	out, err := run(nil, "warehouse", "plan", arn)
	if err != nil || !strings.Contains(out, "CREATE STAGE IF NOT EXISTS ANALYTICS.RAW.LANDING_STAGE") || !strings.Contains(out, "USE ROLE SECURITYADMIN;") {
		t.Fatalf("plan: %v\n%s", err, out)
	}
	for _, c := range []struct {
		args []string
		want string
	}{
		{[]string{"warehouse", "plan", arn, "--env", "local"}, `warehouse.kind is "duckdb"`},
		{[]string{"warehouse", "plan"}, "give --aws-role-arn"},
		{[]string{"warehouse"}, "give plan or apply"},
		{[]string{"warehouse", "apply", arn}, "SHARDFLOW_SNOWFLAKE_ADMIN_DSN"},
	} {
		if _, err := run(nil, c.args...); exitcode.Of(err) != exitcode.Usage || !strings.Contains(err.Error(), c.want) {
			t.Errorf("%v: %v (exit %d), want a usage error with %q", c.args, err, exitcode.Of(err), c.want)
		}
	}
}

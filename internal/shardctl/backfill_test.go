package shardctl

import (
	"strings"
	"testing"

	"github.com/shopsphere/shardflow/internal/exitcode"
)

// TestBackfillPlan: a dry run needs no Airflow (no URL override, no token, no user) and
// prints the runs it would trigger; bad bounds are usage errors naming the flag, found
// before Airflow is asked for.
func TestBackfillPlan(t *testing.T) {
	env := Env{Registry: "../../shards.yaml", Name: "local", Vars: map[string]string{}}
	out, err := runCmd(t, env, "backfill", "--shard", "s01", "--table", "orders", "--from", "2026-11-24T00:00Z", "--to", "2026-11-25T00:00Z", "--dry-run")
	if err != nil {
		t.Fatalf("dry run: %v\n%s", err, out)
	}
	if !strings.Contains(out, "would trigger") || !strings.Contains(out, "shardflow-backfill__s01__orders__20261124T0000Z__") || strings.Contains(out, "triggered") {
		t.Fatalf("dry run printed:\n%s", out)
	}
	for _, tc := range []struct {
		args []string
		want string
	}{
		{[]string{"--from", "yesterday", "--to", "2026-11-25T00:00Z"}, `--from: "yesterday" is not an RFC3339 time`},
		{[]string{"--from", "2026-11-24T00:30Z", "--to", "2026-11-25T00:00Z"}, "--from 2026-11-24T00:30Z is not aligned to extract.window"},
		{[]string{"--from", "2026-11-25T00:00Z", "--to", "2026-11-24T00:00Z"}, "--to 2026-11-24T00:00Z is not after --from"},
		{[]string{"--shard", "s99", "--from", "2026-11-24T00:00Z", "--to", "2026-11-25T00:00Z"}, `--shard "s99" is not in`},
	} {
		args := append([]string{"backfill", "--shard", "s01"}, tc.args...)
		out, err := runCmd(t, env, args...)
		if exitcode.Of(err) != exitcode.Usage || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%v: exit %d %v, want exit 2 with %q\n%s", tc.args, exitcode.Of(err), err, tc.want, out)
		}
	}
}

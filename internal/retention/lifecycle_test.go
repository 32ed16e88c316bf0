package retention

import (
	"flag"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/s3/types"

	"github.com/shopsphere/shardflow/internal/registry"
)

var update = flag.Bool("update", false, "rewrite the golden files")

func committed(t *testing.T, edit func(string) string) *registry.Registry {
	t.Helper()
	b, err := os.ReadFile("../../shards.yaml")
	if err != nil {
		t.Fatal(err)
	}
	text := string(b)
	if edit != nil {
		text = edit(text)
	}
	reg, err := registry.Parse(strings.NewReader(text))
	if err != nil {
		t.Fatal(err)
	}
	if err := reg.Validate(); err != nil {
		t.Fatal(err)
	}
	return reg
}

func golden(t *testing.T, name string, got []byte) {
	t.Helper()
	path := filepath.Join("testdata", name)
	if *update {
		if err := os.WriteFile(path, got, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	want, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	if string(got) != string(want) {
		t.Errorf("%s differs (go test -run %s -update rewrites it):\n%s", path, t.Name(), got)
	}
}

// The committed configuration (docker/s3/lifecycle.production.json) is the brief's: 13
// months hot, 7 years archived, per table prefix; a table override changes its rule
// only; periods are counted in days by their longest calendar reading.
func TestRules(t *testing.T) {
	reg := committed(t, nil)
	got := Rules(reg, StorePrefix(reg.Environments["production"].ObjectStore)).JSON()
	b, err := os.ReadFile("../../docker/s3/lifecycle.production.json")
	if err != nil {
		t.Fatal(err)
	}
	if string(got) != string(b) {
		t.Fatalf("docker/s3/lifecycle.production.json (the golden file) is stale: shardctl generate rewrites it")
	}
	for _, want := range []string{`"Prefix": "shardflow/landing/orders/"`, `"Days": 403,`, `"StorageClass": "GLACIER"`, `"Days": 2562`, `"NoncurrentDays": 30`, `"DaysAfterInitiation": 7`, `"Prefix": "shardflow/"`} {
		if !strings.Contains(string(got), want) {
			t.Errorf("lifecycle lacks %s", want)
		}
	}

	over := committed(t, func(s string) string {
		return strings.Replace(s, "  archive_class: GLACIER ", "  tables: {payments: {hot: 90d, archive: 10y}}\n  archive_class: DEEP_ARCHIVE ", 1)
	})
	golden(t, "lifecycle.override.json", Rules(over, "").JSON())
	l := Rules(over, "")
	for _, r := range l.Rules {
		switch r.ID {
		case "shardflow-landing-payments":
			if r.Transitions[0].Days != 90 || r.Expiration.Days != 3660 || r.Transitions[0].StorageClass != "DEEP_ARCHIVE" || r.Filter.Prefix != "landing/payments/" {
				t.Errorf("payments override: %s", r.Describe())
			}
		case "shardflow-landing-orders":
			if r.Transitions[0].Days != 403 || r.Expiration.Days != 2562 {
				t.Errorf("orders keeps the default: %s", r.Describe())
			}
		}
	}
}

// Diff against the bucket: missing rules are added, changed ones updated, shardflow's
// rules no longer generated removed, the bucket's own rules kept; Merge writes the
// generated rules and keeps the bucket's own (S3 replaces the whole configuration), and
// a rule read back from the SDK equals the generated one.
func TestDiffAndMerge(t *testing.T) {
	want := Rules(committed(t, nil), "shardflow/")
	sdk := want.SDK()
	back, extra := FromSDK(sdk)
	if len(extra) != 0 || len(Diff(back, want)) != 0 {
		t.Fatalf("round trip through the SDK types differs: %v %v", extra, Diff(back, want))
	}
	bucket := []types.LifecycleRule{
		sdk[0],
		{ID: aws.String("shardflow-landing-refunds"), Status: types.ExpirationStatusEnabled, Filter: &types.LifecycleRuleFilter{Prefix: aws.String("shardflow/landing/refunds/")}},
		{ID: aws.String("logs-expiry"), Status: types.ExpirationStatusEnabled, Filter: &types.LifecycleRuleFilter{Prefix: aws.String("logs/")},
			Expiration: &types.LifecycleExpiration{Days: aws.Int32(30)}},
	}
	changed := sdk[1]
	changed.Expiration = &types.LifecycleExpiration{Days: aws.Int32(365)}
	bucket = append(bucket, changed)
	cur, _ := FromSDK(bucket)
	kinds := map[string]string{}
	for _, c := range Diff(cur, want) {
		kinds[c.ID] = c.Kind
	}
	wantKinds := map[string]string{
		aws.ToString(sdk[1].ID): "update", aws.ToString(sdk[2].ID): "add", aws.ToString(sdk[3].ID): "add",
		"shardflow-landing-refunds": "remove", "logs-expiry": "keep",
	}
	for id, k := range wantKinds {
		if kinds[id] != k {
			t.Errorf("rule %s: %q, want %q (all: %v)", id, kinds[id], k, kinds)
		}
	}
	merged := Merge(bucket, want)
	var ids []string
	for _, r := range merged {
		ids = append(ids, aws.ToString(r.ID))
	}
	if len(merged) != len(want.Rules)+1 || aws.ToString(merged[len(merged)-1].ID) != "logs-expiry" || aws.ToInt32(merged[len(merged)-1].Expiration.Days) != 30 {
		t.Errorf("merged rules %v: want the generated ones and logs-expiry as it was", ids)
	}
}

// The purge's SQL as it runs on Snowflake (the same DELETE text runs on DuckDB in
// TestRetention); golden, since no Snowflake account is reachable from the tests.
func TestPurgeSQLGolden(t *testing.T) {
	reg := committed(t, nil)
	var b strings.Builder
	b.WriteString(PurgeLogDDL("ANALYTICS.RAW", true) + ";\n\n")
	for _, tb := range reg.Tables {
		b.WriteString(DeleteSQL("ANALYTICS.RAW", tb) + ";\n\n")
	}
	golden(t, "purge.snowflake.sql", []byte(b.String()))
}

package registry

import (
	"strings"
	"testing"
)

func TestSelect(t *testing.T) {
	s, err := Select(map[string]string{PathVar: "../../shards.yaml"})
	if err != nil {
		t.Fatal(err)
	}
	if s.Name != "local" || s.Env.Warehouse.Kind != "duckdb" || len(s.Registry.Shards) == 0 {
		t.Errorf("default selection: %+v", s)
	}
	s, err = Select(map[string]string{PathVar: "../../shards.yaml", EnvVar: "production"})
	if err != nil || s.Env.Warehouse.Kind != "snowflake" {
		t.Errorf("production: %+v %v", s, err)
	}
	if _, err := Select(map[string]string{PathVar: "../../shards.yaml", EnvVar: "staging"}); err == nil || !strings.Contains(err.Error(), "SHARDFLOW_ENV=staging") {
		t.Errorf("unknown environment: %v", err)
	}
	if _, err := Select(map[string]string{PathVar: "testdata/none.yaml"}); err == nil {
		t.Error("a missing file was accepted")
	}
}

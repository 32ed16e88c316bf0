package shardctl

import (
	"os"
	"testing"

	"github.com/shopsphere/shardflow/internal/registry"
)

// shardctl init --shards 16 on the committed shards.yaml (registry.Generate).
func TestInitGolden(t *testing.T) {
	base, err := os.ReadFile("../../shards.yaml")
	if err != nil {
		t.Fatal(err)
	}
	got, err := registry.Generate(base, 16, 0)
	if err != nil {
		t.Fatal(err)
	}
	golden(t, "init-16.yaml", got)
}

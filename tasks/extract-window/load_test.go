package main

import (
	"context"
	"testing"

	"github.com/shopsphere/shardflow/internal/extract/extracttest"
	"github.com/shopsphere/shardflow/internal/registry"
	"github.com/shopsphere/shardflow/internal/warehouse"
)

// loadLanded loads the landed files of table into the warehouse with internal/load
// (extracttest.LoadLanded) and returns how many it loaded; an error fails the test.
func loadLanded(t *testing.T, wh warehouse.Warehouse, reg *registry.Registry, lake, table string) int {
	t.Helper()
	n, err := extracttest.LoadLanded(context.Background(), wh, reg, lake, table)
	if err != nil {
		t.Fatal(err)
	}
	return n
}

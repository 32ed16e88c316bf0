package main

import (
	"context"
	"testing"

	"github.com/shopsphere/shardflow/internal/load/loadtest"
	"github.com/shopsphere/shardflow/internal/registry"
	"github.com/shopsphere/shardflow/internal/warehouse"
)

// loadLanded loads the landed files of table through the warehouse backend
// (internal/load over the directory store).
func loadLanded(t *testing.T, wh warehouse.Warehouse, reg *registry.Registry, lake, table string) int {
	t.Helper()
	n, err := loadtest.LoadLanded(context.Background(), wh, reg, lake, table)
	if err != nil {
		t.Fatal(err)
	}
	return n
}

package snowflake_test

import (
	"os"
	"testing"

	"github.com/shopsphere/shardflow/internal/warehouse"
	"github.com/shopsphere/shardflow/internal/warehouse/snowflake/snowflaketest"
	"github.com/shopsphere/shardflow/internal/warehouse/warehousetest"
)

var fakesnow *snowflaketest.Server

func TestMain(m *testing.M) {
	fakesnow = snowflaketest.Start()
	code := m.Run()
	fakesnow.Stop()
	os.Exit(code)
}

// TestContractOnFakesnow runs the warehouse contract through gosnowflake against
// fakesnow's HTTP server.
func TestContractOnFakesnow(t *testing.T) {
	warehousetest.Run(t, func(t *testing.T, lake string) warehouse.Warehouse { return fakesnow.Open(t, lake) })
}

package extract

import (
	"context"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/shopsphere/shardflow/internal/fleet"
	"github.com/shopsphere/shardflow/internal/fleet/fleettest"
	"github.com/shopsphere/shardflow/internal/registry"
)

// startShards starts a real fleet (one PostgreSQL cluster per shard of reg, OLTP schema
// applied) for the test and returns its shards by id.
func startShards(t *testing.T, reg *registry.Registry) map[string]fleet.Shard {
	t.Helper()
	f := fleettest.Start(t, reg)
	out := map[string]fleet.Shard{}
	for _, s := range f.Shards {
		out[s.ID] = s
	}
	return out
}

func connect(t *testing.T, dsn string) *pgx.Conn {
	t.Helper()
	c, err := pgx.Connect(context.Background(), dsn)
	if err != nil {
		t.Fatalf("connect: %v", err)
	}
	t.Cleanup(func() { c.Close(context.Background()) })
	return c
}

// testRegistry is shards.yaml with the extract settings replaced.
func testRegistry(t *testing.T, window, lag time.Duration) *registry.Registry {
	t.Helper()
	b, err := os.ReadFile("../../shards.yaml")
	if err != nil {
		t.Fatal(err)
	}
	s := strings.Replace(string(b), "window: 1h", "window: "+window.String(), 1)
	s = strings.Replace(s, "safety_lag: 5m", "safety_lag: "+lag.String(), 1)
	r, err := registry.Check(strings.NewReader(s))
	if err != nil {
		t.Fatal(err)
	}
	return r
}

package main

import (
	"context"

	"github.com/shopsphere/shardflow/internal/dq"
	"github.com/shopsphere/shardflow/internal/landing"
	"github.com/shopsphere/shardflow/internal/objstore/backend"
	"github.com/shopsphere/shardflow/internal/registry"
	whbackend "github.com/shopsphere/shardflow/internal/warehouse/backend"
)

type deps struct {
	warehouse *dq.Warehouse
	files     dq.Files
	close     func()
}

// openDeps opens the environment's warehouse (its Checker answers window checksums,
// duplicates and string columns; dq's SQL runs on its DB) and, for --pci-files, the
// object store.
func openDeps(ctx context.Context, target *registry.Environment, env map[string]string, reg *registry.Registry, pciFiles bool) (*deps, error) {
	wh, err := whbackend.Open(ctx, target.Warehouse, env)
	if err != nil {
		return nil, err
	}
	results := "dq.dq_results"
	if wh.Dialect == landing.Snowflake {
		results = wh.Qualify("DQ.DQ_RESULTS")
	}
	d := &deps{
		warehouse: &dq.Warehouse{DB: wh.DB(), Dialect: wh.Dialect, Raw: wh.Raw, Results: results, Registry: reg, Checker: wh},
		close:     func() { _ = wh.Close() },
	}
	if pciFiles {
		f, err := backend.Open(ctx, target.ObjectStore, backend.CredentialsFromEnv(env))
		if err != nil {
			d.close()
			return nil, err
		}
		d.files = f
	}
	return d, nil
}

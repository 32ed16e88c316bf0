package main

import (
	"context"
	"errors"

	"github.com/shopsphere/shardflow/internal/dq"
	"github.com/shopsphere/shardflow/internal/exitcode"
	"github.com/shopsphere/shardflow/internal/landing"
	"github.com/shopsphere/shardflow/internal/objstore/backend"
	"github.com/shopsphere/shardflow/internal/registry"
	"github.com/shopsphere/shardflow/internal/warehouse"
	"github.com/shopsphere/shardflow/internal/warehouse/duckdb"
	"github.com/shopsphere/shardflow/internal/warehouse/snowflake"
)

type deps struct {
	warehouse *dq.Warehouse
	files     dq.Files
	close     func()
}

// openDeps opens the environment's warehouse through the warehouse package (its Checker
// answers window checksums, duplicates and string columns; dq's SQL runs on its DB) and,
// for --pci-files, the object store.
func openDeps(ctx context.Context, reg *registry.Registry, target *registry.Environment, env map[string]string, pciFiles bool) (*deps, error) {
	w := &dq.Warehouse{Raw: "raw", Results: "dq.dq_results", Registry: reg}
	var closeWH func() error
	switch target.Warehouse.Kind {
	case "duckdb":
		wh, err := duckdb.Open(ctx, target.Warehouse.Path)
		if err != nil {
			if errors.Is(err, warehouse.ErrConflict) {
				return nil, exitcode.Wrap(exitcode.Retryable, err) // another process holds the file
			}
			return nil, err
		}
		w.DB, w.Dialect, w.Checker, closeWH = wh.DB(), landing.DuckDB, wh, wh.Close
	case "snowflake":
		dsn := env[target.Warehouse.DSN.Env]
		if dsn == "" {
			return nil, exitcode.Errorf(exitcode.Usage, "warehouse: environment variable %s (the snowflake DSN) is not set", target.Warehouse.DSN.Env)
		}
		cfg := snowflake.Config{Database: target.Warehouse.Database, Schema: target.Warehouse.Schema, Stage: target.Warehouse.Stage}
		if err := cfg.Validate(); err != nil {
			return nil, exitcode.Wrap(exitcode.Usage, err)
		}
		wh, err := snowflake.Open(ctx, dsn, cfg)
		if err != nil {
			return nil, exitcode.Wrap(exitcode.Retryable, err)
		}
		w.DB, w.Dialect, w.Checker, closeWH = wh.DB(), landing.Snowflake, wh, wh.Close
		w.Raw, w.Results = cfg.Schema, "DQ.DQ_RESULTS"
		if cfg.Database != "" {
			w.Raw, w.Results = cfg.Database+"."+cfg.Schema, cfg.Database+".DQ.DQ_RESULTS"
		}
	default:
		return nil, exitcode.Errorf(exitcode.Usage, "warehouse kind %q is not supported", target.Warehouse.Kind)
	}
	d := &deps{warehouse: w, close: func() { _ = closeWH() }}
	if pciFiles {
		f, err := openFiles(ctx, target, env)
		if err != nil {
			d.close()
			return nil, err
		}
		d.files = f
	}
	return d, nil
}

// openFiles opens the landing zone (a directory or S3) for the PCI file scan.
func openFiles(ctx context.Context, target *registry.Environment, env map[string]string) (dq.Files, error) {
	st, err := backend.Open(ctx, target.ObjectStore, backend.CredentialsFromEnv(env))
	if err != nil {
		return nil, exitcode.Wrap(exitcode.Usage, err)
	}
	return st, nil
}

package main

import (
	"context"
	"database/sql"
	"errors"
	"fmt"

	_ "github.com/snowflakedb/gosnowflake"

	"github.com/shopsphere/shardflow/internal/dq"
	"github.com/shopsphere/shardflow/internal/exitcode"
	"github.com/shopsphere/shardflow/internal/extract/stopgap"
	"github.com/shopsphere/shardflow/internal/landing"
	"github.com/shopsphere/shardflow/internal/registry"
	"github.com/shopsphere/shardflow/internal/warehouse"
	"github.com/shopsphere/shardflow/internal/warehouse/duckdb"
)

type deps struct {
	warehouse *dq.Warehouse
	files     dq.Files
	close     func()
}

// openDeps opens the environment's warehouse (and object store for --pci-files).
func openDeps(ctx context.Context, reg *registry.Registry, target *registry.Environment, env map[string]string, pciFiles bool) (*deps, error) {
	var db *sql.DB
	var err error
	w := &dq.Warehouse{Raw: "raw", Results: "dq.dq_results", Registry: reg}
	switch target.Warehouse.Kind {
	case "duckdb":
		wh, err := duckdb.Open(ctx, target.Warehouse.Path)
		if err != nil {
			if errors.Is(err, warehouse.ErrConflict) {
				return nil, exitcode.Wrap(exitcode.Retryable, err)
			}
			return nil, err
		}
		w.DB, w.Dialect, w.Checker = wh.DB(), landing.DuckDB, wh
		d := &deps{warehouse: w, close: func() { wh.Close() }}
		if pciFiles {
			if d.files, err = openFiles(ctx, target, env); err != nil {
				wh.Close()
				return nil, err
			}
		}
		return d, nil
	case "snowflake":
		dsn := env[target.Warehouse.DSN.Env]
		if dsn == "" {
			return nil, exitcode.Errorf(exitcode.Usage, "warehouse: environment variable %s (the snowflake DSN) is not set", target.Warehouse.DSN.Env)
		}
		db, err = sql.Open("snowflake", dsn)
		w.Dialect = landing.Snowflake
		w.Raw = target.Warehouse.Schema
		w.Results = "DQ.DQ_RESULTS"
	default:
		return nil, exitcode.Errorf(exitcode.Usage, "warehouse kind %q is not supported", target.Warehouse.Kind)
	}
	if err != nil {
		return nil, exitcode.Wrap(exitcode.Usage, fmt.Errorf("open warehouse: %w", err))
	}
	if err := db.PingContext(ctx); err != nil {
		db.Close()
		return nil, exitcode.Wrap(exitcode.Retryable, fmt.Errorf("open warehouse (%s): %w", target.Warehouse.Kind, err))
	}
	w.DB = db
	d := &deps{warehouse: w, close: func() { db.Close() }}
	if pciFiles {
		f, err := openFiles(ctx, target, env)
		if err != nil {
			db.Close()
			return nil, err
		}
		d.files = f
	}
	return d, nil
}

func openFiles(ctx context.Context, target *registry.Environment, env map[string]string) (dq.Files, error) {
	switch target.ObjectStore.Kind {
	case "dir":
		return stopgap.Dir{Root: target.ObjectStore.Path}, nil
	}
	return nil, exitcode.Errorf(exitcode.Usage, "object store kind %q is not supported yet", target.ObjectStore.Kind)
}

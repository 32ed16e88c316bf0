// Package backend opens the warehouse an environment of shards.yaml names
// (environments.<name>.warehouse): DuckDB for kind duckdb, Snowflake (gosnowflake) for
// kind snowflake. load and dq open their warehouse through it, so both tasks read the
// same settings, reach the same backend and classify its failures the same way.
package backend

import (
	"context"
	"database/sql"
	"errors"

	"github.com/shopsphere/shardflow/internal/exitcode"
	"github.com/shopsphere/shardflow/internal/landing"
	"github.com/shopsphere/shardflow/internal/registry"
	"github.com/shopsphere/shardflow/internal/warehouse"
	"github.com/shopsphere/shardflow/internal/warehouse/duckdb"
	"github.com/shopsphere/shardflow/internal/warehouse/snowflake"
)

// Warehouse is an opened backend: it loads files (warehouse.Warehouse), answers dq's
// warehouse-side checks (warehouse.Checker) and gives its connection for dq's own
// read queries and results table.
type Warehouse interface {
	warehouse.Warehouse
	warehouse.Checker
	DB() *sql.DB
}

// Opened is a warehouse with what SQL written against it needs to know.
type Opened struct {
	Warehouse
	Dialect landing.Dialect
	// Raw is the raw tables' schema as SQL names it: raw on DuckDB; SCHEMA, or
	// DATABASE.SCHEMA when the environment names a database, on Snowflake.
	Raw string
	// Database is the Snowflake database the environment names ("" for DuckDB, or for
	// the connection's default database).
	Database string
}

// Qualify names schema.table in the warehouse's database: unchanged without one.
func (o *Opened) Qualify(schemaTable string) string {
	if o.Database == "" {
		return schemaTable
	}
	return o.Database + "." + schemaTable
}

var (
	_ Warehouse = (*duckdb.Warehouse)(nil)
	_ Warehouse = (*snowflake.Warehouse)(nil)
)

// Open opens the warehouse of cfg; env holds the variable cfg.dsn names (snowflake).
// Its errors carry exit codes: a setting missing or wrong is exitcode.Usage; Snowflake
// unreachable, or the DuckDB file locked by another process, is exitcode.Retryable.
func Open(ctx context.Context, cfg registry.Warehouse, env map[string]string) (*Opened, error) {
	switch cfg.Kind {
	case "duckdb":
		w, err := duckdb.Open(ctx, cfg.Path)
		if err != nil {
			if errors.Is(err, warehouse.ErrConflict) {
				return nil, exitcode.Wrap(exitcode.Retryable, err)
			}
			return nil, err
		}
		return &Opened{Warehouse: w, Dialect: landing.DuckDB, Raw: duckdb.Schema}, nil
	case "snowflake":
		dsn := env[cfg.DSN.Env]
		if dsn == "" {
			return nil, exitcode.Errorf(exitcode.Usage, "warehouse: environment variable %s (the snowflake DSN) is not set", cfg.DSN.Env)
		}
		sc := snowflake.Config{Database: cfg.Database, Schema: cfg.Schema, Stage: cfg.Stage}
		if err := sc.Validate(); err != nil {
			return nil, exitcode.Wrap(exitcode.Usage, err)
		}
		w, err := snowflake.Open(ctx, dsn, sc)
		if err != nil {
			return nil, exitcode.Wrap(exitcode.Retryable, err)
		}
		o := &Opened{Warehouse: w, Dialect: landing.Snowflake, Database: cfg.Database}
		o.Raw = o.Qualify(cfg.Schema)
		return o, nil
	}
	return nil, exitcode.Errorf(exitcode.Usage, "warehouse kind %q is not one of duckdb, snowflake", cfg.Kind)
}

// InSchema opens a warehouse whose raw tables and load history are in schema (a
// restore's), beside o: on DuckDB a view on o's connection (one writing process per
// file), on Snowflake a connection of its own. The caller closes it before o.
func (o *Opened) InSchema(ctx context.Context, cfg registry.Warehouse, env map[string]string, schema string) (*Opened, error) {
	if !registry.IsIdentifier(schema) {
		return nil, exitcode.Errorf(exitcode.Usage, "warehouse: %q is not a schema name (lowercase letters, digits and _)", schema)
	}
	if w, ok := o.Warehouse.(*duckdb.Warehouse); ok {
		return &Opened{Warehouse: w.WithSchema(schema), Dialect: o.Dialect, Raw: schema}, nil
	}
	cfg.Schema = schema
	return Open(ctx, cfg, env)
}

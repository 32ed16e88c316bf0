package extract

import (
	"context"
	"errors"
	"fmt"
	"strings"

	"github.com/jackc/pgx/v5"

	"github.com/shopsphere/shardflow/internal/registry"
)

// ErrSchemaDrift is the sentinel of every DriftError.
var ErrSchemaDrift = errors.New("schema drift")

// Difference is one column that differs between a shard and shards.yaml.
type Difference struct {
	Column   string
	Expected string // the shards.yaml type, "" for a column shards.yaml does not declare
	Found    string // the shard's type, "" for a column missing on the shard
}

func (d Difference) String() string {
	switch {
	case d.Found == "":
		return fmt.Sprintf("column %s: missing on the shard (expected %s)", d.Column, d.Expected)
	case d.Expected == "":
		return fmt.Sprintf("column %s: not declared in shards.yaml (found %s); a new column may hold PCI data, so nothing is extracted until shards.yaml declares it with its pci policy", d.Column, d.Found)
	default:
		return fmt.Sprintf("column %s: type mismatch (expected %s, found %s)", d.Column, d.Expected, d.Found)
	}
}

// DriftError lists every column of a shard's table that differs from shards.yaml.
type DriftError struct {
	Shard, Table string
	Differences  []Difference
}

func (e *DriftError) Error() string {
	parts := make([]string, len(e.Differences))
	for i, d := range e.Differences {
		parts[i] = d.String()
	}
	return fmt.Sprintf("shard %s table %s: %v: %s", e.Shard, e.Table, ErrSchemaDrift, strings.Join(parts, "; "))
}

func (e *DriftError) Unwrap() error { return ErrSchemaDrift }

// pgTypes maps information_schema data_type to the shards.yaml type names.
var pgTypes = map[string]string{
	"uuid":                     "uuid",
	"text":                     "text",
	"bigint":                   "bigint",
	"integer":                  "integer",
	"boolean":                  "boolean",
	"timestamp with time zone": "timestamptz",
	"date":                     "date",
}

// CheckSchema compares the columns of table t on the shard with shards.yaml: a declared
// column that is missing, a type that differs, and a column shards.yaml does not declare
// are all drift. Drop-policy columns are compared too (they exist on the shard; they are
// only never selected). It returns a *DriftError listing every difference.
func CheckSchema(ctx context.Context, conn *pgx.Conn, shard string, t registry.Table) error {
	rows, err := conn.Query(ctx, `SELECT column_name::text, data_type::text FROM information_schema.columns
		WHERE table_schema = current_schema() AND table_name = $1 ORDER BY ordinal_position`, t.Name)
	if err != nil {
		return fmt.Errorf("schema check of shard %s table %s: %w", shard, t.Name, err)
	}
	found := map[string]string{}
	var order []string
	for rows.Next() {
		var name, typ string
		if err := rows.Scan(&name, &typ); err != nil {
			rows.Close()
			return fmt.Errorf("schema check of shard %s table %s: %w", shard, t.Name, err)
		}
		if m, ok := pgTypes[typ]; ok {
			typ = m
		}
		found[name] = typ
		order = append(order, name)
	}
	if err := rows.Err(); err != nil {
		return fmt.Errorf("schema check of shard %s table %s: %w", shard, t.Name, err)
	}
	if len(found) == 0 {
		return &DriftError{Shard: shard, Table: t.Name, Differences: []Difference{{Column: "(table)", Expected: "table " + t.Name}}}
	}
	var diffs []Difference
	declared := map[string]bool{}
	for _, c := range t.Columns {
		declared[c.Name] = true
		typ, ok := found[c.Name]
		switch {
		case !ok:
			diffs = append(diffs, Difference{Column: c.Name, Expected: c.Type})
		case typ != c.Type:
			diffs = append(diffs, Difference{Column: c.Name, Expected: c.Type, Found: typ})
		}
	}
	for _, name := range order {
		if !declared[name] {
			diffs = append(diffs, Difference{Column: name, Found: found[name]})
		}
	}
	if len(diffs) > 0 {
		return &DriftError{Shard: shard, Table: t.Name, Differences: diffs}
	}
	return nil
}

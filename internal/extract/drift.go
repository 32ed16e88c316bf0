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
		return fmt.Sprintf("column %s: missing on the shard (expected %s); a declared column that disappears is a drop or a rename and is refused; if it is being added, mark it adding: true in shards.yaml (docs/runbooks/schema-change.md)", d.Column, d.Expected)
	case d.Expected == "":
		return fmt.Sprintf("column %s (%s): on the shard but not declared in shards.yaml; not extracted (a new column may hold PCI data) until shards.yaml declares it with its pci policy", d.Column, d.Found)
	default:
		return fmt.Sprintf("column %s: type changed (shards.yaml %s, shard %s); a type change is refused: add a new column instead (docs/runbooks/schema-change.md)", d.Column, d.Expected, d.Found)
	}
}

// DriftError lists every column of a shard's table that stops its extraction.
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

// Schema is how one table of a shard compares with shards.yaml (docs/runbooks/schema-change.md).
type Schema struct {
	Shard, Table string
	// Absent are the declared columns being rolled out (adding: true) that the shard
	// lacks yet, in shards.yaml order: selected as NULL and named in every row's
	// _absent_columns, so that NULL is not mistaken for the source's.
	Absent []string
	// Undeclared are the shard's columns that shards.yaml does not declare: never
	// selected (they may hold PCI data), reported as a warning.
	Undeclared []Difference
	// Refused stop the table (exit 4): a declared column missing that is not being
	// added (a drop or a rename), a changed type, a missing table.
	Refused []Difference
}

// Err is the *DriftError of the refused differences, nil when there are none.
func (s *Schema) Err() error {
	if len(s.Refused) == 0 {
		return nil
	}
	return &DriftError{Shard: s.Shard, Table: s.Table, Differences: s.Refused}
}

// AbsentList is _absent_columns of the shard's rows: Absent joined by commas.
func (s *Schema) AbsentList() string { return strings.Join(s.Absent, ",") }

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

// CheckSchema compares the columns of table t on the shard with shards.yaml. Drop-policy
// columns are compared too (they exist on the shard; they are only never selected). The
// error is only a failure to read the catalog; the differences are in the Schema.
func CheckSchema(ctx context.Context, conn *pgx.Conn, shard string, t registry.Table) (*Schema, error) {
	rows, err := conn.Query(ctx, `SELECT column_name::text, data_type::text FROM information_schema.columns
		WHERE table_schema = current_schema() AND table_name = $1 ORDER BY ordinal_position`, t.Name)
	if err != nil {
		return nil, fmt.Errorf("schema check of shard %s table %s: %w", shard, t.Name, err)
	}
	found := map[string]string{}
	var order []string
	for rows.Next() {
		var name, typ string
		if err := rows.Scan(&name, &typ); err != nil {
			rows.Close()
			return nil, fmt.Errorf("schema check of shard %s table %s: %w", shard, t.Name, err)
		}
		if m, ok := pgTypes[typ]; ok {
			typ = m
		}
		found[name] = typ
		order = append(order, name)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("schema check of shard %s table %s: %w", shard, t.Name, err)
	}
	s := &Schema{Shard: shard, Table: t.Name}
	if len(found) == 0 {
		s.Refused = []Difference{{Column: "(table)", Expected: "table " + t.Name}}
		return s, nil
	}
	declared := map[string]bool{}
	for _, c := range t.Columns {
		declared[c.Name] = true
		typ, ok := found[c.Name]
		switch {
		case !ok && c.Adding:
			s.Absent = append(s.Absent, c.Name)
		case !ok:
			s.Refused = append(s.Refused, Difference{Column: c.Name, Expected: c.Type})
		case typ != c.Type:
			s.Refused = append(s.Refused, Difference{Column: c.Name, Expected: c.Type, Found: typ})
		}
	}
	for _, name := range order {
		if !declared[name] {
			s.Undeclared = append(s.Undeclared, Difference{Column: name, Found: found[name]})
		}
	}
	return s, nil
}

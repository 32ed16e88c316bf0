package warehouse

import (
	"context"
	"database/sql"
	"fmt"
	"strings"

	"github.com/shopsphere/shardflow/internal/landing"
	"github.com/shopsphere/shardflow/internal/registry"
)

// KeyTextSQL is the SQL text of a row's global key, as landing.KeyText builds it in Go:
// the key columns cast to text, joined by '|'. DuckDB and Snowflake accept it.
func KeyTextSQL(t registry.Table) string {
	parts := make([]string, 0, len(t.PrimaryKey))
	for _, k := range t.PrimaryKey {
		parts = append(parts, "CAST("+k+" AS VARCHAR)")
	}
	return strings.Join(parts, " || '|' || ")
}

// DuplicateKeysSQL counts the (key, version, shard) triples that occur more than once
// among the batch rows of schema.<t>, and lists up to limit of them. The first column is
// the count (repeated), the second the triple as text. DuckDB and Snowflake accept it.
func DuplicateKeysSQL(schema string, t registry.Table, limit int) string {
	return DuplicateKeysAmongSQL(schema+"."+t.Name, t, "", limit)
}

// DuplicateKeysAmongSQL is DuplicateKeysSQL over the qualified table, restricted to the
// (key, version) pairs with a row matching among (a predicate over its columns; empty:
// every pair).
func DuplicateKeysAmongSQL(table string, t registry.Table, among string, limit int) string {
	pair := fmt.Sprintf("%s || ' v' || CAST(%s AS VARCHAR)", KeyTextSQL(t), t.Version)
	from := table
	if among != "" {
		// joined with the distinct pairs of the matching rows (a hash join: no text built
		// for the rows of other keys)
		cols := strings.Join(append(append([]string{}, t.PrimaryKey...), t.Version), ", ")
		from = fmt.Sprintf("%s JOIN (SELECT DISTINCT %s FROM %s WHERE %s) ch USING (%s)", table, cols, table, among, cols)
	}
	where := fmt.Sprintf("%s = 'batch'", landing.ColSource)
	return fmt.Sprintf(`WITH dup AS (SELECT %s || ' shard ' || %s AS k
		FROM %s WHERE %s GROUP BY %s, %s, %s HAVING COUNT(*) > 1)
	SELECT (SELECT COUNT(*) FROM dup), k FROM dup ORDER BY k LIMIT %d`,
		pair, landing.ColShard, from, where, strings.Join(t.PrimaryKey, ", "), t.Version, landing.ColShard, limit)
}

// QueryDuplicateKeys runs a query of DuplicateKeysSQL's shape (the count, repeated, then
// one key as text per row) and returns the count and the keys.
func QueryDuplicateKeys(ctx context.Context, db *sql.DB, q string) (int64, []string, error) {
	rows, err := db.QueryContext(ctx, q)
	if err != nil {
		return 0, nil, err
	}
	defer rows.Close()
	var n int64
	var keys []string
	for rows.Next() {
		var k string
		if err := rows.Scan(&n, &k); err != nil {
			return 0, nil, err
		}
		keys = append(keys, k)
	}
	return n, keys, rows.Err()
}

// Package reconcile compares, bucket by bucket, what the warehouse says the fleet holds
// with what the shards hold: per table, the count and checksum (docs/contracts.md §5)
// of the live rows (not deleted) of each bucket on the shard that owns it now, against
// the latest owned version of each key in the warehouse (int_<table>_deduplicated, not
// removed), and fact_orders against the shards' orders. It reads every row of both
// sides: an operator's check after a move, a demo's and a test's proof, not a
// scheduled job (dq is that).
package reconcile

import (
	"context"
	"database/sql"
	"fmt"
	"sort"
	"strings"

	"github.com/jackc/pgx/v5"

	"github.com/shopsphere/shardflow/internal/landing"
	"github.com/shopsphere/shardflow/internal/registry"
)

// FactOrders is the pseudo-table name of fact_orders in Sums (compared with the shards'
// orders).
const FactOrders = "fact_orders"

// Sums is table → bucket → the count and checksum of its rows.
type Sums map[string]map[int]*landing.Checksum

func (s Sums) add(table string, bucket int, key string, version int64) {
	if s[table] == nil {
		s[table] = map[int]*landing.Checksum{}
	}
	c := s[table][bucket]
	if c == nil {
		c = &landing.Checksum{}
		s[table][bucket] = c
	}
	c.Add(key, version)
}

// Rows is the total row count of a table.
func (s Sums) Rows(table string) int64 {
	var n int64
	for _, c := range s[table] {
		n += c.Rows()
	}
	return n
}

func keyText(t registry.Table, alias string) string {
	parts := make([]string, len(t.PrimaryKey))
	for i, k := range t.PrimaryKey {
		parts[i] = "CAST(" + alias + k + " AS VARCHAR)"
	}
	return strings.Join(parts, " || '|' || ")
}

// Shards reads every shard's live rows of the buckets it owns now (shards[].buckets;
// rows of other buckets are a move's copies or rows awaiting cleanup). dsn gives a
// shard's DSN; a shard without one (retired) is skipped.
func Shards(ctx context.Context, reg *registry.Registry, dsn func(shard string) string) (Sums, error) {
	out := Sums{}
	for _, s := range reg.Shards {
		if len(s.Buckets) == 0 {
			continue
		}
		d := dsn(s.ID)
		if d == "" {
			return nil, fmt.Errorf("reconcile: no DSN for shard %s", s.ID)
		}
		c, err := pgx.Connect(ctx, d)
		if err != nil {
			return nil, fmt.Errorf("reconcile: connect shard %s: %w", s.ID, err)
		}
		owns := func(b int) bool {
			for _, r := range s.Buckets {
				if r.Contains(b) {
					return true
				}
			}
			return false
		}
		for _, t := range reg.Tables {
			q := fmt.Sprintf("SELECT %s, %s, %s FROM %s WHERE NOT deleted", registry.BucketColumn, keyText(t, ""), t.Version, t.Name)
			rows, err := c.Query(ctx, q)
			if err != nil {
				c.Close(ctx)
				return nil, fmt.Errorf("reconcile: shard %s table %s: %w", s.ID, t.Name, err)
			}
			for rows.Next() {
				var b int32
				var k string
				var v int64
				if err := rows.Scan(&b, &k, &v); err != nil {
					rows.Close()
					c.Close(ctx)
					return nil, err
				}
				if owns(int(b)) {
					out.add(t.Name, int(b), k, v)
					if t.Name == "orders" {
						out.add(FactOrders, int(b), k, v)
					}
				}
			}
			rows.Close()
			if err := rows.Err(); err != nil {
				c.Close(ctx)
				return nil, err
			}
		}
		c.Close(ctx)
	}
	return out, nil
}

// Warehouse reads the latest owned version of every key (intermediate schema) and
// fact_orders (analytics schema); qualify names a schema.table in the warehouse.
func Warehouse(ctx context.Context, db *sql.DB, reg *registry.Registry, qualify func(string) string) (Sums, error) {
	out := Sums{}
	read := func(table, q string, bucketOf func(b int64) int) error {
		rows, err := db.QueryContext(ctx, q)
		if err != nil {
			return fmt.Errorf("reconcile: warehouse %s: %w", table, err)
		}
		defer rows.Close()
		for rows.Next() {
			var b int64
			var k string
			var v int64
			if err := rows.Scan(&b, &k, &v); err != nil {
				return err
			}
			out.add(table, bucketOf(b), k, v)
		}
		return rows.Err()
	}
	same := func(b int64) int { return int(b) }
	for _, t := range reg.Tables {
		q := fmt.Sprintf("SELECT bucket, %s, row_version FROM %s WHERE NOT is_removed", keyText(t, ""), qualify("intermediate.int_"+t.Name+"_deduplicated"))
		if err := read(t.Name, q, same); err != nil {
			return nil, err
		}
	}
	q := "SELECT customer_id, CAST(order_id AS VARCHAR), order_version FROM " + qualify("analytics.fact_orders")
	if err := read(FactOrders, q, func(c int64) int { return reg.Bucket(c) }); err != nil {
		return nil, err
	}
	return out, nil
}

// Diff is one bucket of one table where the two sides differ.
type Diff struct {
	Table  string
	Bucket int
	Shards string // "rows checksum"
	Ware   string
}

// Compare returns every (table, bucket) whose count or checksum differs, sorted.
func Compare(shards, ware Sums) []Diff {
	var out []Diff
	tables := map[string]bool{}
	for t := range shards {
		tables[t] = true
	}
	for t := range ware {
		tables[t] = true
	}
	for t := range tables {
		buckets := map[int]bool{}
		for b := range shards[t] {
			buckets[b] = true
		}
		for b := range ware[t] {
			buckets[b] = true
		}
		for b := range buckets {
			a, w := text(shards[t][b]), text(ware[t][b])
			if a != w {
				out = append(out, Diff{Table: t, Bucket: b, Shards: a, Ware: w})
			}
		}
	}
	sort.Slice(out, func(i, j int) bool {
		if out[i].Table != out[j].Table {
			return out[i].Table < out[j].Table
		}
		return out[i].Bucket < out[j].Bucket
	})
	return out
}

func text(c *landing.Checksum) string {
	if c == nil {
		return "0 0"
	}
	return fmt.Sprintf("%d %s", c.Rows(), c.String())
}

// Owners summarizes a side per current owner's bucket ranges: shard → table → rows.
func Owners(reg *registry.Registry, s Sums) map[string]map[string]int64 {
	out := map[string]map[string]int64{}
	for _, sh := range reg.Shards {
		m := map[string]int64{}
		for t, byBucket := range s {
			for b, c := range byBucket {
				for _, r := range sh.Buckets {
					if r.Contains(b) {
						m[t] += c.Rows()
					}
				}
			}
		}
		out[sh.ID] = m
	}
	return out
}

package dq

import (
	"context"
	"fmt"
	"strings"

	"github.com/shopsphere/shardflow/internal/extract"
)

// CheckSchema is the comparison of a shard's table with shards.yaml
// (docs/runbooks/schema-change.md): FAIL when a difference refuses the table (a
// declared column dropped or renamed, a type change; extract-window exits 4), WARN for
// a column the shard has and shards.yaml does not declare (never landed) or a
// rolling-out column the shard lacks yet (landed NULL, named in _absent_columns).
const CheckSchema = "schema"

func schemaCheck(ctx context.Context, src *Source, table string) Result {
	r := Result{Check: CheckSchema, Shard: src.Shard, Table: table}
	t, ok := src.Registry.Table(table)
	if !ok {
		r.Status, r.Detail = Fail, fmt.Sprintf("table %s is not in shards.yaml", table)
		return r
	}
	s, err := extract.CheckSchema(ctx, src.Conn, src.Shard, t)
	if err != nil {
		r.Status, r.Detail = Fail, err.Error()
		return r
	}
	var parts []string
	for _, d := range s.Refused {
		parts = append(parts, "refused: "+d.String())
	}
	for _, d := range s.Undeclared {
		parts = append(parts, "undeclared: "+d.String())
	}
	if len(s.Absent) > 0 {
		parts = append(parts, fmt.Sprintf("rolling out: the shard lacks %s yet; its rows land NULL for them, named in _absent_columns", strings.Join(s.Absent, ", ")))
	}
	switch {
	case len(s.Refused) > 0:
		r.Status = Fail
	case len(parts) > 0:
		r.Status = Warn
	default:
		r.Status = Pass
	}
	r.Detail = strings.Join(parts, "; ")
	return r
}

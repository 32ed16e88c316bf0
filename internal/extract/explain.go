package extract

import (
	"context"
	"encoding/json"
	"fmt"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"
)

// PlanNode is one node of EXPLAIN (FORMAT JSON).
type PlanNode struct {
	NodeType  string     `json:"Node Type"`
	Relation  string     `json:"Relation Name"`
	Index     string     `json:"Index Name"`
	IndexCond string     `json:"Index Cond"`
	Plans     []PlanNode `json:"Plans"`
}

// ExplainNodes returns the plan PostgreSQL chooses for query with args.
func ExplainNodes(ctx context.Context, conn *pgx.Conn, query string, args ...any) (*PlanNode, error) {
	return explain(ctx, conn, false, query, args...)
}

// explain returns the plan for these argument values or, with generic set, the generic
// plan a prepared statement may switch to after a few executions (plan_cache_mode =
// force_generic_plan; the tests check both avoid a sequential scan).
func explain(ctx context.Context, conn *pgx.Conn, generic bool, query string, args ...any) (*PlanNode, error) {
	tx, err := conn.Begin(ctx)
	if err != nil {
		return nil, fmt.Errorf("explain: %w", err)
	}
	defer func() { _ = tx.Rollback(context.WithoutCancel(ctx)) }()
	stmt := "EXPLAIN (FORMAT JSON) " + query
	if generic {
		if _, err := tx.Exec(ctx, "SET LOCAL plan_cache_mode = force_generic_plan"); err != nil {
			return nil, fmt.Errorf("explain: %w", err)
		}
		if _, err := tx.Exec(ctx, "PREPARE shardflow_explain AS "+query); err != nil {
			return nil, fmt.Errorf("explain: prepare: %w", err)
		}
		defer func() { _, _ = tx.Exec(context.WithoutCancel(ctx), "DEALLOCATE shardflow_explain") }()
		ps := make([]string, len(args))
		for i, a := range args {
			l, err := literal(a)
			if err != nil {
				return nil, fmt.Errorf("explain: %w", err)
			}
			ps[i] = l
		}
		stmt = "EXPLAIN (FORMAT JSON) EXECUTE shardflow_explain(" + strings.Join(ps, ", ") + ")"
		args = nil
	}
	var raw []byte
	if err := tx.QueryRow(ctx, stmt, args...).Scan(&raw); err != nil {
		return nil, fmt.Errorf("explain: %w", err)
	}
	var out []struct {
		Plan PlanNode `json:"Plan"`
	}
	if err := json.Unmarshal(raw, &out); err != nil || len(out) == 0 {
		return nil, fmt.Errorf("explain: decode plan: %v", err)
	}
	return &out[0].Plan, nil
}

// Walk calls f for n and every node below it.
func (n *PlanNode) Walk(f func(*PlanNode)) {
	f(n)
	for i := range n.Plans {
		n.Plans[i].Walk(f)
	}
}

// HasSeqScan reports whether the plan reads relation with a sequential scan.
func HasSeqScan(n *PlanNode, relation string) bool {
	found := false
	n.Walk(func(p *PlanNode) {
		if p.NodeType == "Seq Scan" && p.Relation == relation {
			found = true
		}
	})
	return found
}

// SummarizePlan writes the nodes as "Limit > Index Scan orders_watermark_idx on orders".
func SummarizePlan(n *PlanNode) string {
	var parts []string
	n.Walk(func(p *PlanNode) {
		s := p.NodeType
		if p.Index != "" {
			s += " using " + p.Index
		}
		if p.Relation != "" {
			s += " on " + p.Relation
		}
		parts = append(parts, s)
	})
	return strings.Join(parts, " > ")
}

// literal renders a parameter as an SQL literal for EXECUTE (which takes no bind
// parameters under EXPLAIN).
func literal(a any) (string, error) {
	switch v := a.(type) {
	case time.Time:
		return "'" + v.UTC().Format(time.RFC3339Nano) + "'", nil
	case string:
		return "'" + strings.ReplaceAll(v, "'", "''") + "'", nil
	case int, int32, int64:
		return fmt.Sprint(v), nil
	}
	return "", fmt.Errorf("no literal for %T", a)
}

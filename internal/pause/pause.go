// Package pause is an operator's pause of one shard (`shardctl shard pause`): kept in
// the object store under control/paused/<shard>.json, where every task and consumer
// replica of the environment reads it, so a shard can be held without pausing the
// fleet's DAGs. While a shard is paused, extract-window exits exitcode.Paused before
// touching it (Airflow marks the task and its load and dq skipped; the other shards'
// groups and the fleet's dbt build go on), tokenize cdc leaves its partitions at their
// committed offsets (Kafka keeps the changes), and its lateness alerts are held. Resume
// clears the pause and the skipped windows run again (docs/runbooks/pause-a-shard.md).
package pause

import (
	"context"
	"fmt"
	"strings"
	"time"

	"github.com/shopsphere/shardflow/internal/exitcode"
	"github.com/shopsphere/shardflow/internal/objstore"
)

// Prefix is where pauses are kept.
const Prefix = "control/paused/"

// Pause is one shard's pause.
type Pause struct {
	Shard  string    `json:"shard"`
	Reason string    `json:"reason"`
	By     string    `json:"by"`
	At     time.Time `json:"paused_at"`
}

// Key is the object of shard's pause.
func Key(shard string) string { return Prefix + shard + ".json" }

// Err is the error a task of a paused shard exits with (exitcode.Paused).
func (p *Pause) Err() error {
	return exitcode.Errorf(exitcode.Paused, "shard %s is paused by %s since %s (%s): nothing done, the work is left for its resume (shardctl shard resume %s)",
		p.Shard, p.By, p.At.UTC().Format(time.RFC3339), p.Reason, p.Shard)
}

// Set pauses p.Shard. Pausing a paused shard keeps the first pause (its time is where
// the skipped windows begin) and returns it.
func Set(ctx context.Context, store objstore.Store, p Pause) (*Pause, error) {
	if strings.TrimSpace(p.Reason) == "" || strings.TrimSpace(p.By) == "" {
		return nil, exitcode.Errorf(exitcode.Usage, "pause %s: a reason and who pauses are required", p.Shard)
	}
	if old, err := Get(ctx, store, p.Shard); err != nil || old != nil {
		return old, err
	}
	if p.At.IsZero() {
		p.At = time.Now().UTC()
	}
	if err := objstore.PutJSON(ctx, store, Key(p.Shard), p); err != nil {
		return nil, fmt.Errorf("pause %s: %w", p.Shard, err)
	}
	return &p, nil
}

// Get returns shard's pause, or nil when it is not paused.
func Get(ctx context.Context, store objstore.Store, shard string) (*Pause, error) {
	var p Pause
	ok, err := objstore.GetJSON(ctx, store, Key(shard), &p)
	if err != nil {
		return nil, fmt.Errorf("the pause of shard %s: %w", shard, err)
	}
	if !ok {
		return nil, nil
	}
	return &p, nil
}

// List returns every paused shard's pause, by shard.
func List(ctx context.Context, store objstore.Store) ([]Pause, error) {
	keys, err := store.List(ctx, Prefix)
	if err != nil {
		return nil, objstore.Classify(fmt.Errorf("list %s: %w", Prefix, err))
	}
	var out []Pause
	for _, k := range keys {
		shard, ok := strings.CutSuffix(strings.TrimPrefix(k, Prefix), ".json")
		if !ok || strings.Contains(shard, "/") {
			continue
		}
		p, err := Get(ctx, store, shard)
		if err != nil {
			return nil, err
		}
		if p != nil {
			out = append(out, *p)
		}
	}
	return out, nil
}

// Clear resumes shard and returns the pause it ended (nil: it was not paused).
func Clear(ctx context.Context, store objstore.Store, shard string) (*Pause, error) {
	p, err := Get(ctx, store, shard)
	if err != nil || p == nil {
		return p, err
	}
	if err := store.Delete(ctx, Key(shard)); err != nil {
		return nil, objstore.Classify(fmt.Errorf("resume %s: %w", shard, err))
	}
	return p, nil
}

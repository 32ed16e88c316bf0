package retention

import (
	"context"
	"database/sql"
	"fmt"
	"time"

	"github.com/shopsphere/shardflow/internal/load"
	"github.com/shopsphere/shardflow/internal/registry"
	"github.com/shopsphere/shardflow/internal/warehouse"
)

// Restorer reloads archived files into a restore schema through the load path
// (internal/load: each file checked against its manifest, loaded in one transaction),
// then stamps each file's rows and history entry with the loaded_at of its original
// load, so a finance run's pins (loaded_at high-water marks) select in the restore
// exactly the rows they selected in raw.
type Restorer struct {
	Registry *registry.Registry
	Store    load.Store
	// Source is the warehouse's raw schema: its load history says which files to
	// restore and when each was first loaded.
	Source Warehouse
	Raw    string // Source's raw schema as SQL names it
	// RunInputs is the relation of the finance run inputs (fct_finance_run_inputs).
	RunInputs string
	// Target loads into the restore schema, TargetSchema as SQL names it.
	Target       Target
	TargetSchema string
}

// Target is the restore schema's warehouse: the load path, and SQL for the stamps.
type Target interface {
	warehouse.Warehouse
	DB() *sql.DB
}

// Selection is what to restore: the input files of a finance run (every file loaded up
// to its pins), or the files of Table (all when empty) whose dt= day is in [From, To].
type Selection struct {
	Run      string
	Table    string
	From, To time.Time
}

// Files lists the load-history entries sel selects, in key order.
func (r *Restorer) Files(ctx context.Context, sel Selection) ([]warehouse.HistoryEntry, error) {
	hist, err := r.Source.History(ctx, warehouse.HistoryFilter{Table: sel.Table})
	if err != nil {
		return nil, err
	}
	if sel.Run == "" {
		var out []warehouse.HistoryEntry
		for _, e := range hist {
			if d, ok := keyDay(e.FileKey); ok && !d.Before(sel.From) && !d.After(sel.To) {
				out = append(out, e)
			}
		}
		return out, nil
	}
	rows, err := r.Source.DB().QueryContext(ctx, fmt.Sprintf("SELECT shard_id, table_name, hwm_loaded_at FROM %s WHERE run_id = ?", r.RunInputs), sel.Run)
	if err != nil {
		return nil, fmt.Errorf("read the pins of finance run %s from %s: %w", sel.Run, r.RunInputs, err)
	}
	defer rows.Close()
	pins := map[[2]string]time.Time{}
	for rows.Next() {
		var shard, table string
		var hwm time.Time
		if err := rows.Scan(&shard, &table, &hwm); err != nil {
			return nil, err
		}
		pins[[2]string{shard, table}] = hwm
	}
	if err := rows.Err(); err != nil {
		return nil, err
	}
	if len(pins) == 0 {
		return nil, fmt.Errorf("finance run %s has no pinned inputs in %s (shardctl finance runs lists the runs)", sel.Run, r.RunInputs)
	}
	var out []warehouse.HistoryEntry
	for _, e := range hist {
		if hwm, ok := pins[[2]string{e.Shard, e.Table}]; ok && !e.LoadedAt.After(hwm) {
			out = append(out, e)
		}
	}
	return out, nil
}

// RestoreSummary says what a restore did.
type RestoreSummary struct {
	Files, Loaded, Skipped int
	Rows                   int64
}

// Restore loads files into the restore schema and stamps their original loaded_at.
// Running it again loads nothing twice (the load path's idempotency) and stamps again.
func (r *Restorer) Restore(ctx context.Context, files []warehouse.HistoryEntry) (RestoreSummary, error) {
	sum := RestoreSummary{Files: len(files)}
	if err := r.Target.Ensure(ctx, r.Registry.Tables); err != nil {
		return sum, fmt.Errorf("restore: create the restore schema %s: %w", r.TargetSchema, err)
	}
	keys := make([]string, len(files))
	for i, f := range files {
		keys[i] = f.FileKey
	}
	l := &load.Loader{Store: r.Store, Warehouse: r.Target, Registry: r.Registry}
	sums, err := l.LoadKeys(ctx, keys)
	for _, s := range sums {
		sum.Loaded += s.Loaded
		sum.Skipped += s.Skipped
		sum.Rows += s.Rows
	}
	if err != nil {
		return sum, fmt.Errorf("restore into %s: %w", r.TargetSchema, err)
	}
	db := r.Target.DB()
	for _, f := range files {
		at := f.LoadedAt.UTC()
		if _, err := db.ExecContext(ctx, fmt.Sprintf("UPDATE %s.%s SET %s = ? WHERE %s = ?", r.TargetSchema, f.Table, warehouse.ColLoadedAt, warehouse.ColFile), at, f.FileKey); err != nil {
			return sum, fmt.Errorf("restore: stamp %s: %w", f.FileKey, err)
		}
		if _, err := db.ExecContext(ctx, fmt.Sprintf("UPDATE %s.%s SET loaded_at = ? WHERE file_key = ?", r.TargetSchema, warehouse.HistoryTable), at, f.FileKey); err != nil {
			return sum, fmt.Errorf("restore: stamp %s: %w", f.FileKey, err)
		}
	}
	return sum, nil
}

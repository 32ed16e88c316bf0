package fleet

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
)

// Tables are the OLTP tables schema.sql creates, in the order status reports them.
var Tables = []string{"orders", "order_items", "payments"}

// ShardStatus is what Status reports about one shard.
type ShardStatus struct {
	ID      string
	Port    int
	Running bool
	Rows    map[string]int64 // table → rows (exact count); nil when not running
	Err     error            // why rows could not be counted
}

// Status reports every shard's port, whether it runs, and its row count per table.
func (f *Fleet) Status(ctx context.Context) ([]ShardStatus, error) {
	out := make([]ShardStatus, 0, len(f.Shards))
	for _, s := range f.Shards {
		st := ShardStatus{ID: s.ID, Port: s.Port}
		ok, err := f.pg.running(ctx, s.DataDir)
		if err != nil {
			return out, fmt.Errorf("fleet status: shard %s: %w", s.ID, err)
		}
		st.Running = ok
		if ok {
			st.Rows, st.Err = CountRows(ctx, s.AdminDSN)
		}
		out = append(out, st)
	}
	return out, nil
}

// CountRows counts the rows of every table of Tables on one shard.
func CountRows(ctx context.Context, dsn string) (map[string]int64, error) {
	c, err := connectRetry(ctx, dsn)
	if err != nil {
		return nil, err
	}
	defer c.Close(ctx)
	rows := map[string]int64{}
	for _, t := range Tables {
		var n int64
		if err := c.QueryRow(ctx, "SELECT count(*) FROM "+t).Scan(&n); err != nil {
			return nil, fmt.Errorf("count %s: %w", t, err)
		}
		rows[t] = n
	}
	return rows, nil
}

// Down stops every cluster of the fleet in dir; with purge it then deletes dir (data,
// logs, passwords). A dir without a fleet is not an error.
func Down(ctx context.Context, dir string, purge bool) error {
	f, err := Open(dir)
	if errors.Is(err, ErrNoFleet) {
		if purge {
			return os.RemoveAll(dir)
		}
		return nil
	}
	if err != nil {
		return err
	}
	if err := f.Stop(ctx); err != nil {
		return err
	}
	if purge {
		abs, _ := filepath.Abs(dir)
		if err := os.RemoveAll(abs); err != nil {
			return fmt.Errorf("fleet purge: %w", err)
		}
	}
	return nil
}

// Package loadtest loads a directory landing zone into a warehouse for the tests of the
// tasks that land files (extract-window, dq). It lives beside load, not in extracttest:
// extracttest only makes source rows, so extract's and dq's test fixtures do not pull in
// the loader and the warehouse, and load's own tests may use extracttest.
package loadtest

import (
	"context"

	"github.com/shopsphere/shardflow/internal/load"
	"github.com/shopsphere/shardflow/internal/objstore/dir"
	"github.com/shopsphere/shardflow/internal/registry"
	"github.com/shopsphere/shardflow/internal/warehouse"
)

// LoadLanded loads every landed file of table under the directory lake into the
// warehouse with internal/load (manifests in key order, each data file checked against
// its manifest, then the warehouse's file-level idempotent LoadFile). failpoint, when
// not nil, is the Loader's test hook. It returns the files loaded or replaced.
func LoadLanded(ctx context.Context, w warehouse.Warehouse, reg *registry.Registry, lake, table string, failpoint ...func(step, key string) error) (int, error) {
	if err := w.Ensure(ctx, reg.Tables); err != nil {
		return 0, err
	}
	l := &load.Loader{Store: dir.Store{Root: lake}, Warehouse: w, Registry: reg}
	if len(failpoint) > 0 {
		l.Failpoint = failpoint[0]
	}
	sums, err := l.LoadAll(ctx, load.Filter{Table: table})
	n := 0
	for _, s := range sums {
		n += s.Loaded
	}
	return n, err
}

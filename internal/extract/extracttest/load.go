package extracttest

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"strings"

	"github.com/shopsphere/shardflow/internal/landing"
	"github.com/shopsphere/shardflow/internal/registry"
	"github.com/shopsphere/shardflow/internal/warehouse"
)

// LoadLanded loads every landed file of table under the directory lake into the
// warehouse through its LoadFile (file-level idempotent, docs/contracts.md §6). A data
// file without its manifest is ignored; one whose sha256 differs from its manifest is
// refused. It walks the directory itself and stands in for internal/load in the tests
// of extract and dq until that package lands. It returns the files loaded or replaced.
func LoadLanded(ctx context.Context, w warehouse.Warehouse, reg *registry.Registry, lake, table string) (int, error) {
	t, ok := reg.Table(table)
	if !ok {
		return 0, fmt.Errorf("load: table %s is not in shards.yaml", table)
	}
	if err := w.Ensure(ctx, reg.Tables); err != nil {
		return 0, err
	}
	var manifests []string
	root := filepath.Join(lake, landing.TablePrefix(table))
	_ = filepath.Walk(root, func(p string, fi os.FileInfo, err error) error {
		if err == nil && !fi.IsDir() && strings.HasSuffix(p, landing.ManifestSuffix) {
			manifests = append(manifests, p)
		}
		return nil
	})
	sort.Strings(manifests)
	loaded := 0
	for _, mp := range manifests {
		b, err := os.ReadFile(mp)
		if err != nil {
			return loaded, err
		}
		m, err := landing.ParseManifest(b)
		if err != nil {
			return loaded, err
		}
		dataPath := filepath.Join(lake, m.DataKey)
		data, err := os.ReadFile(dataPath)
		if err != nil {
			return loaded, err
		}
		sum := sha256.Sum256(data)
		if hex.EncodeToString(sum[:]) != m.DataSHA256 {
			return loaded, fmt.Errorf("load %s: data sha256 differs from its manifest", m.DataKey)
		}
		res, err := w.LoadFile(ctx, warehouse.File{Table: t, Manifest: m, Path: dataPath})
		if err != nil {
			return loaded, err
		}
		if !res.Skipped {
			loaded++
		}
	}
	return loaded, nil
}

package extracttest

import (
	"crypto/sha256"
	"database/sql"
	"encoding/hex"
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"strings"

	"github.com/shopsphere/shardflow/internal/landing"
)

// LoadLanded loads every landed file of table under the directory lake into
// raw.<table> of a DuckDB warehouse with the semantics of docs/contracts.md §6:
// file-level idempotent, a known key with another sha256 replaces that file's rows, a
// data file without its manifest is ignored, a data file whose sha256 differs from its
// manifest is refused. It stands in for internal/load in the tests of extract and dq
// until that package lands. It returns the number of files loaded.
func LoadLanded(db *sql.DB, lake, table string) (int, error) {
	for _, s := range []string{"CREATE SCHEMA IF NOT EXISTS raw",
		`CREATE TABLE IF NOT EXISTS raw._load_history (file_key VARCHAR PRIMARY KEY, table_name VARCHAR, shard VARCHAR,
		source VARCHAR, rows BIGINT, checksum VARCHAR, data_sha256 VARCHAR, loaded_at TIMESTAMPTZ)`} {
		if _, err := db.Exec(s); err != nil {
			return 0, fmt.Errorf("load: %w", err)
		}
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
		var known string
		if err := db.QueryRow("SELECT data_sha256 FROM raw._load_history WHERE file_key = ?", m.DataKey).Scan(&known); err == nil && known == m.DataSHA256 {
			continue
		}
		tx, err := db.Begin()
		if err != nil {
			return loaded, err
		}
		for _, s := range []struct {
			q    string
			args []any
		}{
			{"CREATE TABLE IF NOT EXISTS raw." + table + " AS SELECT *, CAST(NULL AS VARCHAR) AS _file, CAST(NULL AS TIMESTAMPTZ) AS _loaded_at FROM read_parquet(?) LIMIT 0", []any{dataPath}},
			{"DELETE FROM raw." + table + " WHERE _file = ?", []any{m.DataKey}},
			{"INSERT INTO raw." + table + " SELECT *, ? AS _file, now() AS _loaded_at FROM read_parquet(?)", []any{m.DataKey, dataPath}},
			{"DELETE FROM raw._load_history WHERE file_key = ?", []any{m.DataKey}},
			{"INSERT INTO raw._load_history VALUES (?, ?, ?, ?, ?, ?, ?, now())", []any{m.DataKey, m.Table, m.Shard, string(m.Source), m.Rows, m.Checksum, m.DataSHA256}},
		} {
			if _, err := tx.Exec(s.q, s.args...); err != nil {
				_ = tx.Rollback()
				return loaded, fmt.Errorf("load %s: %w", m.DataKey, err)
			}
		}
		if err := tx.Commit(); err != nil {
			return loaded, err
		}
		loaded++
	}
	return loaded, nil
}

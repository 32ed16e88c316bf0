package main

import (
	"crypto/sha256"
	"database/sql"
	"encoding/hex"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"testing"

	"github.com/shopsphere/shardflow/internal/landing"
)

// loadLanded loads every landed file of table into raw.<table> with the semantics of
// docs/contracts.md §6 (file-level idempotent; a known key with another sha replaces the
// file's rows; a data file without its manifest is ignored). It stands in for
// internal/load until that lands.
func loadLanded(t *testing.T, db *sql.DB, lake, table string) (loaded int) {
	t.Helper()
	exec := func(q string, args ...any) {
		t.Helper()
		if _, err := db.Exec(q, args...); err != nil {
			t.Fatalf("%s: %v", q, err)
		}
	}
	exec("CREATE SCHEMA IF NOT EXISTS raw")
	exec(`CREATE TABLE IF NOT EXISTS raw._load_history (file_key VARCHAR PRIMARY KEY, table_name VARCHAR, shard VARCHAR,
		source VARCHAR, rows BIGINT, checksum VARCHAR, data_sha256 VARCHAR, loaded_at TIMESTAMPTZ)`)
	var manifests []string
	root := filepath.Join(lake, landing.TablePrefix(table))
	_ = filepath.Walk(root, func(p string, fi os.FileInfo, err error) error {
		if err == nil && !fi.IsDir() && strings.HasSuffix(p, landing.ManifestSuffix) {
			manifests = append(manifests, p)
		}
		return nil
	})
	sort.Strings(manifests)
	for _, mp := range manifests {
		b, err := os.ReadFile(mp)
		if err != nil {
			t.Fatal(err)
		}
		m, err := landing.ParseManifest(b)
		if err != nil {
			t.Fatal(err)
		}
		dataPath := filepath.Join(lake, m.DataKey)
		data, err := os.ReadFile(dataPath)
		if err != nil {
			t.Fatal(err)
		}
		sum := sha256.Sum256(data)
		if hex.EncodeToString(sum[:]) != m.DataSHA256 {
			t.Fatalf("%s: data sha256 differs from its manifest", m.DataKey)
		}
		var known string
		err = db.QueryRow("SELECT data_sha256 FROM raw._load_history WHERE file_key = ?", m.DataKey).Scan(&known)
		if err == nil && known == m.DataSHA256 {
			continue
		}
		tx, err := db.Begin()
		if err != nil {
			t.Fatal(err)
		}
		q := func(s string, args ...any) {
			t.Helper()
			if _, err := tx.Exec(s, args...); err != nil {
				t.Fatalf("%s: %v", s, err)
			}
		}
		q("CREATE TABLE IF NOT EXISTS raw."+table+" AS SELECT *, CAST(NULL AS VARCHAR) AS _file, CAST(NULL AS TIMESTAMPTZ) AS _loaded_at FROM read_parquet(?) LIMIT 0", dataPath)
		q("DELETE FROM raw."+table+" WHERE _file = ?", m.DataKey)
		q("INSERT INTO raw."+table+" SELECT *, ? AS _file, now() AS _loaded_at FROM read_parquet(?)", m.DataKey, dataPath)
		q("DELETE FROM raw._load_history WHERE file_key = ?", m.DataKey)
		q("INSERT INTO raw._load_history VALUES (?, ?, ?, ?, ?, ?, ?, now())", m.DataKey, m.Table, m.Shard, string(m.Source), m.Rows, m.Checksum, m.DataSHA256)
		if err := tx.Commit(); err != nil {
			t.Fatal(err)
		}
		loaded++
	}
	return loaded
}

package main

import (
	"database/sql"
	"testing"

	"github.com/shopsphere/shardflow/internal/extract/extracttest"
)

// loadLanded loads the landed files of table (extracttest.LoadLanded until internal/load lands).
func loadLanded(t *testing.T, db *sql.DB, lake, table string) int {
	t.Helper()
	n, err := extracttest.LoadLanded(db, lake, table)
	if err != nil {
		t.Fatal(err)
	}
	return n
}

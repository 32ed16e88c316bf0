package testenv

import (
	"os"
	"path/filepath"
	"testing"
)

func TestRoot(t *testing.T) {
	root := Root(t)
	if _, err := os.Stat(filepath.Join(root, "shards.yaml")); err != nil {
		t.Errorf("root %s has no shards.yaml: %v", root, err)
	}
	Need(t, filepath.Join(root, "go.mod"), "nothing") // present: neither skips nor fails
}

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

func TestFreePorts(t *testing.T) {
	ports, err := FreePorts(20)
	if err != nil {
		t.Fatal(err)
	}
	seen := map[int]bool{}
	for _, p := range ports {
		if seen[p] || isReserved(p) || p <= 0 {
			t.Fatalf("ports %v: %d is repeated, reserved or invalid", ports, p)
		}
		seen[p] = true
	}
	if !isReserved(18080) || !isReserved(19092) || isReserved(20000) {
		t.Fatal("the reserved ranges do not hold make airflow's and make cdc-up's ports")
	}
}

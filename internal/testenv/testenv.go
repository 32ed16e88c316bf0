// Package testenv is what the test harnesses (fleettest, cdctest, airflowtest, s3test,
// snowflaketest) share: where the repository is, and one rule for a service or binary
// a test needs but cannot find: outside CI the test is skipped with the make target
// that installs it; under CI (CI set, as .ci/run sets it) it fails, so a missing
// install step never passes as a skip.
package testenv

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"testing"
)

// ErrNoRoot: no go.mod above the working directory.
var ErrNoRoot = errors.New("no go.mod above the working directory")

// FindRoot returns the repository root: the nearest directory above the working
// directory that holds go.mod.
func FindRoot() (string, error) {
	dir, err := os.Getwd()
	if err != nil {
		return "", err
	}
	for {
		if _, err := os.Stat(filepath.Join(dir, "go.mod")); err == nil {
			return dir, nil
		}
		parent := filepath.Dir(dir)
		if parent == dir {
			return "", ErrNoRoot
		}
		dir = parent
	}
}

// Root is FindRoot for a test: it fails the test when there is none.
func Root(t testing.TB) string {
	t.Helper()
	root, err := FindRoot()
	if err != nil {
		t.Fatal(err)
	}
	return root
}

// Missing skips the test with msg, or fails it under CI.
func Missing(t testing.TB, msg string) {
	t.Helper()
	if os.Getenv("CI") != "" {
		t.Fatal(msg)
	}
	t.Skip(msg)
}

// Need calls Missing when path does not exist, naming the make target that makes it.
func Need(t testing.TB, path, target string) {
	t.Helper()
	if _, err := os.Stat(path); err != nil {
		Missing(t, fmt.Sprintf("%s is missing: run `make %s`", path, target))
	}
}

// Package genfile compares and writes the output of shardflow's generators (DAGs, dbt
// seeds, connector configs): a set of files under one directory, rendered from
// shards.yaml, committed, and checked for drift in CI.
//
// A Set owns the files it renders. When it also owns a pattern (Owned), files under
// the directory that match the pattern and are no longer rendered are stale too, and
// Write removes them: a retired shard's connector config or a table's dropped DAG goes
// away with the registry entry that made it.
package genfile

import (
	"bytes"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path"
	"path/filepath"
	"sort"
	"strings"

	"github.com/pmezard/go-difflib/difflib"
)

// File is one rendered file; Path is slash-separated and relative to the set's Dir.
type File struct {
	Path string
	Data []byte
}

// Set is the rendered output of one generator.
type Set struct {
	Name  string // what generated it, e.g. "dbt seeds"
	Dir   string // where it is committed
	Files []File
	// Owned matches (path.Match, against the slash path relative to Dir; "**" as the
	// whole pattern matches everything) the files of Dir that belong to the generator.
	// Empty: only the rendered files.
	Owned string
	// Skip names directories under Dir that are never the generator's (caches).
	Skip []string
}

// Kind is what a change does to a file.
type Kind string

// Kinds of change.
const (
	Create Kind = "create"
	Modify Kind = "modify"
	Delete Kind = "delete"
)

// Change is one file that differs between the set and its directory.
type Change struct {
	Path     string // relative to the set's Dir
	Kind     Kind
	Old, New []byte
}

// Diff returns the changes that Write would make, in path order. It writes nothing.
func (s Set) Diff() ([]Change, error) {
	want := map[string][]byte{}
	for _, f := range s.Files {
		want[f.Path] = f.Data
	}
	var out []Change
	for _, f := range s.Files {
		old, err := os.ReadFile(filepath.Join(s.Dir, filepath.FromSlash(f.Path)))
		switch {
		case errors.Is(err, fs.ErrNotExist):
			out = append(out, Change{Path: f.Path, Kind: Create, New: f.Data})
		case err != nil:
			return nil, fmt.Errorf("%s: read %s: %w", s.Name, f.Path, err)
		case !bytes.Equal(old, f.Data):
			out = append(out, Change{Path: f.Path, Kind: Modify, Old: old, New: f.Data})
		}
	}
	extra, err := s.unrendered(want)
	if err != nil {
		return nil, err
	}
	for _, p := range extra {
		old, err := os.ReadFile(filepath.Join(s.Dir, filepath.FromSlash(p)))
		if err != nil {
			return nil, fmt.Errorf("%s: read %s: %w", s.Name, p, err)
		}
		out = append(out, Change{Path: p, Kind: Delete, Old: old})
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Path < out[j].Path })
	return out, nil
}

// unrendered lists the owned files under Dir that are not in want.
func (s Set) unrendered(want map[string][]byte) ([]string, error) {
	if s.Owned == "" {
		return nil, nil
	}
	var extra []string
	err := filepath.WalkDir(s.Dir, func(p string, d fs.DirEntry, err error) error {
		if errors.Is(err, fs.ErrNotExist) && p == s.Dir {
			return filepath.SkipDir
		}
		if err != nil {
			return err
		}
		if d.IsDir() {
			for _, n := range s.Skip {
				if d.Name() == n {
					return filepath.SkipDir
				}
			}
			return nil
		}
		rel, err := filepath.Rel(s.Dir, p)
		if err != nil {
			return err
		}
		rel = filepath.ToSlash(rel)
		if _, ok := want[rel]; ok {
			return nil
		}
		if s.Owned == "**" {
			extra = append(extra, rel)
			return nil
		}
		if ok, err := path.Match(s.Owned, rel); err != nil {
			return err
		} else if ok {
			extra = append(extra, rel)
		}
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("%s: list %s: %w", s.Name, s.Dir, err)
	}
	return extra, nil
}

// Write makes Dir hold the set: it writes the files that differ and removes the owned
// files no longer rendered, and returns what it changed. Unchanged files are not
// touched, so their modification times stay (Airflow does not re-parse them).
func (s Set) Write() ([]Change, error) {
	changes, err := s.Diff()
	if err != nil {
		return nil, err
	}
	for _, c := range changes {
		p := filepath.Join(s.Dir, filepath.FromSlash(c.Path))
		if c.Kind == Delete {
			if err := os.Remove(p); err != nil {
				return nil, fmt.Errorf("%s: remove %s: %w", s.Name, c.Path, err)
			}
			continue
		}
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			return nil, fmt.Errorf("%s: write %s: %w", s.Name, c.Path, err)
		}
		if err := os.WriteFile(p, c.New, 0o644); err != nil {
			return nil, fmt.Errorf("%s: write %s: %w", s.Name, c.Path, err)
		}
	}
	return changes, nil
}

// Paths returns the paths of changes.
func Paths(changes []Change) []string {
	out := make([]string, len(changes))
	for i, c := range changes {
		out[i] = c.Path
	}
	return out
}

// Unified returns c as a unified diff (3 lines of context), with the paths under dir.
func Unified(dir string, c Change) string {
	from, to := path.Join(dir, c.Path), path.Join(dir, c.Path)
	switch c.Kind {
	case Create:
		from = "/dev/null"
	case Delete:
		to = "/dev/null"
	}
	text, err := difflib.GetUnifiedDiffString(difflib.UnifiedDiff{
		A: lines(c.Old), B: lines(c.New), FromFile: from, ToFile: to, Context: 3,
	})
	if err != nil {
		return fmt.Sprintf("--- %s\n+++ %s\n(diff failed: %v)\n", from, to, err)
	}
	return text
}

// lines splits b into lines that keep their newline, the form difflib expects; a last
// line without one gets it, so the diff stays line-oriented.
func lines(b []byte) []string {
	if len(b) == 0 {
		return nil
	}
	ls := strings.SplitAfter(string(b), "\n")
	if ls[len(ls)-1] == "" {
		ls = ls[:len(ls)-1]
	} else {
		ls[len(ls)-1] += "\n"
	}
	return ls
}

package dir_test

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/shopsphere/shardflow/internal/objstore"
	"github.com/shopsphere/shardflow/internal/objstore/dir"
	"github.com/shopsphere/shardflow/internal/objstore/objstoretest"
)

func TestContract(t *testing.T) {
	objstoretest.Run(t, func(t *testing.T) objstore.Store { return dir.Store{Root: t.TempDir()} })
}

func TestTemporaryFilesAreInvisible(t *testing.T) {
	ctx := context.Background()
	root := t.TempDir()
	s := dir.Store{Root: root}
	if err := s.Put(ctx, "a/b.parquet", strings.NewReader("x")); err != nil {
		t.Fatal(err)
	}
	// what a Put killed before its rename leaves behind
	if err := os.WriteFile(filepath.Join(root, "a", ".tmp-c.parquet-123"), []byte("partial"), 0o644); err != nil {
		t.Fatal(err)
	}
	keys, err := s.List(ctx, "")
	if err != nil || !slices.Equal(keys, []string{"a/b.parquet"}) {
		t.Fatalf("List = %v %v", keys, err)
	}
	if _, err := s.Get(ctx, "a/.tmp-c.parquet-123"); !errors.Is(err, objstore.ErrInvalidKey) {
		t.Fatalf("Get of a temporary file: %v, want ErrInvalidKey", err)
	}
	if err := s.Put(ctx, "a/.tmp-x", strings.NewReader("x")); !errors.Is(err, objstore.ErrInvalidKey) {
		t.Fatalf("Put of a reserved name: %v, want ErrInvalidKey", err)
	}
}

func TestLocalPath(t *testing.T) {
	root := t.TempDir()
	s := dir.Store{Root: root}
	if err := s.Put(context.Background(), "a/b", strings.NewReader("x")); err != nil {
		t.Fatal(err)
	}
	p, err := s.LocalPath("a/b")
	if err != nil || p != filepath.Join(root, "a", "b") {
		t.Fatalf("LocalPath = %q %v", p, err)
	}
	if b, err := os.ReadFile(p); err != nil || string(b) != "x" {
		t.Fatalf("read %s: %q %v", p, b, err)
	}
	if _, err := s.LocalPath("../etc/passwd"); !errors.Is(err, objstore.ErrInvalidKey) {
		t.Fatalf("LocalPath outside the root: %v", err)
	}
}

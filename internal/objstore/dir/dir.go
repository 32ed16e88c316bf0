// Package dir is the object store in a local directory (the embedded default, kind: dir
// in shards.yaml): a key is a file path under Root.
package dir

import (
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"syscall"

	"github.com/shopsphere/shardflow/internal/objstore"
)

// tmpPrefix starts the name of a file a Put is still writing; such names are never
// keys (List skips them, CheckKey-valid keys with a segment starting so are refused).
const tmpPrefix = ".tmp-"

// Store is an objstore.Store in the directory Root. Put writes a temporary file beside
// the target, syncs it, and renames it into place (then syncs the directory), so a
// failed or killed Put leaves the previous object. A temporary file left by a killed
// process is invisible to List and Get; nothing else removes it (runbook: docs/objstore.md).
// A key cannot be both an object and the directory of other keys.
type Store struct{ Root string }

var _ objstore.Store = Store{}

// LocalPath is the file that holds key: load hands it to DuckDB in place instead of
// copying it.
func (d Store) LocalPath(key string) (string, error) { return d.path(key) }

func (d Store) path(key string) (string, error) {
	if err := objstore.CheckKey(key); err != nil {
		return "", err
	}
	for _, seg := range strings.Split(key, "/") {
		if strings.HasPrefix(seg, tmpPrefix) {
			return "", fmt.Errorf("%w %q: segments starting with %s are reserved by the directory store", objstore.ErrInvalidKey, key, tmpPrefix)
		}
	}
	return filepath.Join(d.Root, filepath.FromSlash(key)), nil
}

// Put stores r under key (see objstore.Store).
func (d Store) Put(ctx context.Context, key string, r io.Reader) error {
	p, err := d.path(key)
	if err != nil {
		return fmt.Errorf("put %s: %w", key, err)
	}
	if err := d.put(ctx, p, r); err != nil {
		return wrap("put", key, err)
	}
	return nil
}

// Create stores r under key unless an object is there (see objstore.Store): the
// temporary file is hard-linked to the key's path, which fails when the path exists.
func (d Store) Create(ctx context.Context, key string, r io.Reader) error {
	p, err := d.path(key)
	if err != nil {
		return fmt.Errorf("create %s: %w", key, err)
	}
	err = d.write(ctx, p, r, func(tmp string) error { return os.Link(tmp, p) })
	if errors.Is(err, fs.ErrExist) {
		return fmt.Errorf("create %s: %w", key, objstore.ErrExists)
	}
	if err != nil {
		return wrap("create", key, err)
	}
	return nil
}

func (d Store) put(ctx context.Context, p string, r io.Reader) error {
	return d.write(ctx, p, r, func(tmp string) error { return os.Rename(tmp, p) })
}

// write writes r to a synced temporary file beside p, moves it into place with place
// and syncs the directory.
func (d Store) write(ctx context.Context, p string, r io.Reader, place func(tmp string) error) error {
	dir := filepath.Dir(p)
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return err
	}
	f, err := os.CreateTemp(dir, tmpPrefix+filepath.Base(p)+"-*")
	if err != nil {
		return err
	}
	defer os.Remove(f.Name()) // a no-op once renamed; drops the temporary name of a link
	if _, err := io.Copy(f, ctxReader{ctx, r}); err != nil {
		f.Close()
		return err
	}
	if err := f.Sync(); err != nil {
		f.Close()
		return err
	}
	if err := f.Close(); err != nil {
		return err
	}
	if err := ctx.Err(); err != nil {
		return err
	}
	if err := place(f.Name()); err != nil {
		return err
	}
	return syncDir(dir)
}

// wrap names the operation and key of err and marks what retrying cannot fix
// (objstore.ErrDenied): no permission, or a read-only file system.
func wrap(op, key string, err error) error {
	if errors.Is(err, fs.ErrPermission) || errors.Is(err, syscall.EROFS) {
		return fmt.Errorf("%s %s: %w: %w", op, key, objstore.ErrDenied, err)
	}
	return fmt.Errorf("%s %s: %w", op, key, err)
}

// syncDir makes a rename in dir durable.
func syncDir(dir string) error {
	f, err := os.Open(dir)
	if err != nil {
		return err
	}
	defer f.Close()
	return f.Sync()
}

// ctxReader stops a copy when its context ends.
type ctxReader struct {
	ctx context.Context
	r   io.Reader
}

func (c ctxReader) Read(p []byte) (int, error) {
	if err := c.ctx.Err(); err != nil {
		return 0, err
	}
	return c.r.Read(p)
}

// Get opens key (see objstore.Store).
func (d Store) Get(ctx context.Context, key string) (io.ReadCloser, error) {
	p, err := d.path(key)
	if err != nil {
		return nil, fmt.Errorf("get %s: %w", key, err)
	}
	f, err := os.Open(p)
	if errors.Is(err, fs.ErrNotExist) {
		return nil, fmt.Errorf("get %s: %w", key, fs.ErrNotExist)
	}
	if err != nil {
		return nil, wrap("get", key, err)
	}
	if st, err := f.Stat(); err != nil || st.IsDir() {
		f.Close()
		if err != nil {
			return nil, fmt.Errorf("get %s: %w", key, err)
		}
		return nil, fmt.Errorf("get %s: %w (a directory of other keys)", key, fs.ErrNotExist)
	}
	return f, nil
}

// List returns the keys under prefix, sorted (see objstore.Store). It walks only the
// deepest directory the prefix names.
func (d Store) List(ctx context.Context, prefix string) ([]string, error) {
	start := d.Root
	if i := strings.LastIndex(prefix, "/"); i >= 0 {
		start = filepath.Join(d.Root, filepath.FromSlash(prefix[:i]))
	}
	var out []string
	err := filepath.WalkDir(start, func(p string, e fs.DirEntry, err error) error {
		if err != nil {
			if errors.Is(err, fs.ErrNotExist) {
				return nil
			}
			return err
		}
		if err := ctx.Err(); err != nil {
			return err
		}
		if e.IsDir() || strings.HasPrefix(e.Name(), tmpPrefix) {
			return nil
		}
		rel, err := filepath.Rel(d.Root, p)
		if err != nil {
			return err
		}
		if k := filepath.ToSlash(rel); strings.HasPrefix(k, prefix) {
			out = append(out, k)
		}
		return nil
	})
	if err != nil {
		return nil, wrap("list", prefix, err)
	}
	sort.Strings(out)
	return out, nil
}

// Delete removes key; an absent key is not an error (see objstore.Store).
func (d Store) Delete(ctx context.Context, key string) error {
	p, err := d.path(key)
	if err != nil {
		return fmt.Errorf("delete %s: %w", key, err)
	}
	st, err := os.Lstat(p)
	if errors.Is(err, fs.ErrNotExist) || (err == nil && st.IsDir()) {
		return nil
	}
	if err := os.Remove(p); err != nil && !errors.Is(err, fs.ErrNotExist) {
		return wrap("delete", key, err)
	}
	return nil
}

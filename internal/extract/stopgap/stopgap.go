// Package stopgap holds minimal implementations of extract's three seams, written to the
// contracts while the real packages are built in parallel: a directory object store
// (docs/contracts.md §5 layout), the keyed tokenizer (§4) and a Parquet writer of landed
// rows (§5 types). They are replaced by internal/objstore, internal/tokenize and the
// landing Parquet writer as those land; nothing outside extract's own tests, mains and
// benchmark uses them.
package stopgap

import (
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/base64"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"time"
	"unsafe"

	"github.com/parquet-go/parquet-go"

	"github.com/shopsphere/shardflow/internal/landing"
	"github.com/shopsphere/shardflow/internal/registry"
)

// Dir is an object store in a directory: keys are paths under Root. Put writes a
// temporary file and renames it into place only after the reader is drained, so a
// failed or killed Put leaves the previous object (or none).
type Dir struct{ Root string }

func (d Dir) path(key string) (string, error) {
	if strings.Contains(key, "..") || strings.HasPrefix(key, "/") {
		return "", fmt.Errorf("object key %q is not a relative path", key)
	}
	return filepath.Join(d.Root, filepath.FromSlash(key)), nil
}

// Put stores r under key.
func (d Dir) Put(ctx context.Context, key string, r io.Reader) error {
	p, err := d.path(key)
	if err != nil {
		return err
	}
	if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
		return fmt.Errorf("put %s: %w", key, err)
	}
	f, err := os.CreateTemp(filepath.Dir(p), ".tmp-"+filepath.Base(p)+"-*")
	if err != nil {
		return fmt.Errorf("put %s: %w", key, err)
	}
	defer os.Remove(f.Name())
	if _, err := io.Copy(f, r); err != nil {
		f.Close()
		return fmt.Errorf("put %s: %w", key, err)
	}
	if err := f.Sync(); err != nil {
		f.Close()
		return fmt.Errorf("put %s: %w", key, err)
	}
	if err := f.Close(); err != nil {
		return fmt.Errorf("put %s: %w", key, err)
	}
	if err := os.Rename(f.Name(), p); err != nil {
		return fmt.Errorf("put %s: %w", key, err)
	}
	return nil
}

// Delete removes key; an absent key is not an error.
func (d Dir) Delete(ctx context.Context, key string) error {
	p, err := d.path(key)
	if err != nil {
		return err
	}
	if err := os.Remove(p); err != nil && !errors.Is(err, fs.ErrNotExist) {
		return fmt.Errorf("delete %s: %w", key, err)
	}
	return nil
}

// Get opens key.
func (d Dir) Get(ctx context.Context, key string) (io.ReadCloser, error) {
	p, err := d.path(key)
	if err != nil {
		return nil, err
	}
	return os.Open(p)
}

// LocalPath is the file that holds key (load reads it in place).
func (d Dir) LocalPath(key string) (string, error) { return d.path(key) }

// List returns the keys under prefix, sorted (temporary files excluded).
func (d Dir) List(ctx context.Context, prefix string) ([]string, error) {
	var out []string
	err := filepath.WalkDir(d.Root, func(p string, e fs.DirEntry, err error) error {
		if err != nil {
			if errors.Is(err, fs.ErrNotExist) {
				return nil
			}
			return err
		}
		if e.IsDir() || strings.HasPrefix(e.Name(), ".tmp-") {
			return nil
		}
		rel, err := filepath.Rel(d.Root, p)
		if err != nil {
			return err
		}
		k := filepath.ToSlash(rel)
		if strings.HasPrefix(k, prefix) {
			out = append(out, k)
		}
		return nil
	})
	sort.Strings(out)
	return out, err
}

// Tokenizer is the keyed tokenizer of docs/contracts.md §4.
type Tokenizer struct {
	ID  string
	Key []byte
}

// NewTokenizer checks the key (at least 32 bytes).
func NewTokenizer(keyID string, key []byte) (*Tokenizer, error) {
	if len(key) < 32 {
		return nil, errors.New("tokenizer key must be at least 32 bytes")
	}
	return &Tokenizer{ID: keyID, Key: key}, nil
}

// KeyID is the key id recorded in tokens and manifests.
func (t *Tokenizer) KeyID() string { return t.ID }

// Apply returns the landed form of a PCI column's value.
func (t *Tokenizer) Apply(c registry.Column, v string) (string, error) {
	v = strings.TrimSpace(v)
	switch c.PCI {
	case registry.PCIToken:
		m := hmac.New(sha256.New, t.Key)
		m.Write([]byte(c.Name + "\x00" + v))
		return "tok_" + t.ID + "_" + base64.RawURLEncoding.EncodeToString(m.Sum(nil)[:16]), nil
	case registry.PCILast4:
		d := digits(v)
		if len(d) < 4 {
			return "", fmt.Errorf("column %s: fewer than 4 digits", c.Name)
		}
		return d[len(d)-4:], nil
	case registry.PCIBIN:
		d := digits(v)
		if len(d) < 6 {
			return "", fmt.Errorf("column %s: fewer than 6 digits", c.Name)
		}
		return d[:6], nil
	case registry.PCIDrop:
		return "", fmt.Errorf("column %s: policy drop is never tokenized", c.Name)
	}
	return v, nil
}

func digits(s string) string {
	var b strings.Builder
	for _, r := range s {
		if r >= '0' && r <= '9' {
			b.WriteRune(r)
		}
	}
	return b.String()
}

// Writer writes landed rows as Parquet (every column optional, snappy).
type Writer struct {
	w     *parquet.Writer
	cols  []landing.Column
	leaf  []int // column position → leaf index in the schema
	buf   []parquet.Row
	batch int
}

// NewWriter opens a Writer over out.
func NewWriter(out io.Writer, cols []landing.Column) (*Writer, error) {
	g := parquet.Group{}
	for _, c := range cols {
		var n parquet.Node
		switch c.Type {
		case "uuid", "text":
			n = parquet.String()
		case "bigint":
			n = parquet.Int(64)
		case "integer":
			n = parquet.Int(32)
		case "boolean":
			n = parquet.Leaf(parquet.BooleanType)
		case "timestamptz":
			n = parquet.Timestamp(parquet.Microsecond)
		case "date":
			n = parquet.Date()
		default:
			return nil, fmt.Errorf("parquet: column %s has unsupported type %s", c.Name, c.Type)
		}
		g[c.Name] = parquet.Optional(parquet.Compressed(n, &parquet.Snappy))
	}
	schema := parquet.NewSchema("landed", g)
	idx := map[string]int{}
	for i, p := range schema.Columns() {
		idx[p[0]] = i
	}
	wr := &Writer{w: parquet.NewWriter(out, schema), cols: cols, batch: 1024}
	for _, c := range cols {
		wr.leaf = append(wr.leaf, idx[c.Name])
	}
	return wr, nil
}

// Write buffers one row. Strings are referenced, not copied, until the batch is
// flushed (WriteRows copies them into the column buffers); Go strings are immutable.
func (w *Writer) Write(row []any) error {
	var r parquet.Row
	if n := len(w.buf); n < cap(w.buf) && len(w.buf[:n+1][n]) == len(row) {
		r = w.buf[:n+1][n] // a row buffer of an earlier batch
	} else {
		r = make(parquet.Row, len(row))
	}
	for i, v := range row {
		var pv parquet.Value
		switch x := v.(type) {
		case nil:
			r[w.leaf[i]] = parquet.NullValue().Level(0, 0, w.leaf[i])
			continue
		case string:
			pv = parquet.ByteArrayValue(unsafe.Slice(unsafe.StringData(x), len(x)))
		case int64:
			pv = parquet.Int64Value(x)
		case int32:
			pv = parquet.Int32Value(x)
		case bool:
			pv = parquet.BooleanValue(x)
		case time.Time:
			if w.cols[i].Type == "date" {
				pv = parquet.Int32Value(int32(x.Unix() / 86400))
			} else {
				pv = parquet.Int64Value(x.UnixMicro())
			}
		default:
			return fmt.Errorf("parquet: column %s: unsupported value type %T", w.cols[i].Name, v)
		}
		r[w.leaf[i]] = pv.Level(0, 1, w.leaf[i])
	}
	w.buf = append(w.buf, r)
	if len(w.buf) >= w.batch {
		return w.flush()
	}
	return nil
}

func (w *Writer) flush() error {
	if len(w.buf) == 0 {
		return nil
	}
	if _, err := w.w.WriteRows(w.buf); err != nil {
		return err
	}
	w.buf = w.buf[:0]
	return nil
}

// Close flushes and writes the footer.
func (w *Writer) Close() error {
	if err := w.flush(); err != nil {
		return err
	}
	return w.w.Close()
}

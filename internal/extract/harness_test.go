package extract

import (
	"context"
	"io"
	"sync"
	"testing"

	"github.com/jackc/pgx/v5"

	"github.com/shopsphere/shardflow/internal/landing"
	"github.com/shopsphere/shardflow/internal/registry"
)

// INTERIM: replaced by the real object store, tokenizer and Parquet writer as they land.
type lakeT struct {
	mu   sync.Mutex
	m    map[string][]byte
	rows map[string][][]any
	last *rowsW
}

func (s *lakeT) Put(ctx context.Context, key string, r io.Reader) error {
	b, err := io.ReadAll(r)
	if err != nil {
		return err
	}
	s.mu.Lock()
	s.m[key] = b
	s.mu.Unlock()
	return nil
}
func (s *lakeT) Delete(ctx context.Context, key string) error { delete(s.m, key); return nil }

func (s *lakeT) has(t *testing.T, w Window, shard, table string) bool {
	_, ok := s.m[landing.ManifestKey(landing.BatchKey(table, shard, w.Start, w.End))]
	return ok
}

func (s *lakeT) keys(t *testing.T, res *Result) map[string]bool {
	out := map[string]bool{}
	for _, r := range s.last.rows {
		out[r[0].(string)] = true
	}
	return out
}

type tokT struct{}

func (tokT) Apply(c registry.Column, v string) (string, error) { return "tok_" + c.Name, nil }
func (tokT) KeyID() string                                     { return "k1" }

type rowsW struct {
	lake *lakeT
	key  *string
	rows [][]any
}

func (w *rowsW) Write(row []any) error {
	w.rows = append(w.rows, append([]any(nil), row...))
	return nil
}
func (w *rowsW) Close() error { return nil }

func newTestExtractor(t *testing.T, reg *registry.Registry, conn *pgx.Conn) (*Extractor, *lakeT) {
	lake := &lakeT{m: map[string][]byte{}, rows: map[string][][]any{}}
	e := &Extractor{Registry: reg, Conn: conn, Store: lake, Tokenizer: tokT{}}
	e.NewWriter = func(io.Writer, []landing.Column) (FileWriter, error) {
		lake.last = &rowsW{lake: lake}
		return lake.last, nil
	}
	return e, lake
}

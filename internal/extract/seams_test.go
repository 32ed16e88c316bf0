package extract

import (
	"bytes"
	"context"
	"errors"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"testing/iotest"
	"time"

	"github.com/shopsphere/shardflow/internal/extract/extracttest"
	"github.com/shopsphere/shardflow/internal/landing"
	"github.com/shopsphere/shardflow/internal/objstore"
	"github.com/shopsphere/shardflow/internal/objstore/dir"
	"github.com/shopsphere/shardflow/internal/objstore/s3"
	"github.com/shopsphere/shardflow/internal/objstore/s3/s3test"
	"github.com/shopsphere/shardflow/internal/registry"
	"github.com/shopsphere/shardflow/internal/tokenize"
)

// What extract relies on from its seams (the doc comments of objstore.Store,
// landing.Tokenizer and landing.FileWriter), checked against every implementation wired
// into extract-window.

func TestStoreContract(t *testing.T) {
	root := t.TempDir()
	getFrom := func(st objstore.Store) func(string) ([]byte, error) {
		return func(k string) ([]byte, error) {
			rc, err := st.Get(context.Background(), k)
			if err != nil {
				return nil, err
			}
			defer rc.Close()
			return io.ReadAll(rc)
		}
	}
	type storeT struct {
		s   objstore.Store
		get func(key string) ([]byte, error)
	}
	stores := map[string]storeT{
		"dir": {dir.Store{Root: root}, func(k string) ([]byte, error) { return os.ReadFile(filepath.Join(root, k)) }},
	}
	srv := s3test.Start()
	defer srv.Stop()
	if srv.Endpoint != "" || os.Getenv("CI") != "" {
		srv.Need(t)
		st, err := s3.Open(context.Background(), srv.Config(srv.Bucket(t), "shardflow"))
		if err != nil {
			t.Fatal(err)
		}
		stores["s3"] = storeT{st, getFrom(st)}
	} else {
		t.Logf("s3 store not checked: %s", srv.Why)
	}
	for name, st := range stores {
		t.Run(name, func(t *testing.T) {
			ctx := context.Background()
			key := "landing/orders/source=batch/shard=s00/dt=2026-03-10/x.parquet"
			if err := st.s.Put(ctx, key, strings.NewReader("v1")); err != nil {
				t.Fatal(err)
			}
			// a Put whose reader fails leaves the previous object
			bad := io.MultiReader(strings.NewReader("partial"), iotest.ErrReader(errors.New("source died")))
			if err := st.s.Put(ctx, key, bad); err == nil {
				t.Fatal("Put with a failing reader succeeded")
			}
			if b, err := st.get(key); err != nil || string(b) != "v1" {
				t.Fatalf("after a failed Put: %q %v, want the previous object", b, err)
			}
			// overwrite
			if err := st.s.Put(ctx, key, strings.NewReader("v2")); err != nil {
				t.Fatal(err)
			}
			if b, _ := st.get(key); string(b) != "v2" {
				t.Fatalf("after overwrite: %q", b)
			}
			// delete is idempotent
			for i := 0; i < 2; i++ {
				if err := st.s.Delete(ctx, key); err != nil {
					t.Fatalf("delete #%d: %v", i+1, err)
				}
			}
			if _, err := st.get(key); err == nil {
				t.Fatal("deleted object still readable")
			}
		})
	}
}

func TestTokenizerContract(t *testing.T) {
	reg := testRegistry(t, time.Hour, 5*time.Minute)
	pay, _ := reg.Table("payments")
	col := func(n string) registry.Column { c, _ := pay.Column(n); return c }
	a, err := tokenize.New("k1", []byte(strings.Repeat("a", 32)))
	if err != nil {
		t.Fatal(err)
	}
	b, _ := tokenize.New("k1", []byte(strings.Repeat("a", 32)))
	other, _ := tokenize.New("k1", []byte(strings.Repeat("b", 32)))
	if _, err := tokenize.New("k1", []byte("short")); err == nil {
		t.Error("a 5-byte key was accepted")
	}
	for name, tk := range map[string]landing.Tokenizer{"tokenize": a} {
		t.Run(name, func(t *testing.T) {
			pan := "4111111111111111"
			t1, _ := tk.Apply(col("card_number"), pan)
			t2, _ := b.Apply(col("card_number"), " "+pan+" ")
			t3, _ := other.Apply(col("card_number"), pan)
			h, _ := tk.Apply(col("card_holder"), pan)
			if t1 != t2 || !strings.HasPrefix(t1, "tok_k1_") || strings.Contains(t1, pan) {
				t.Errorf("token %q / %q: want equal, tok_k1_ prefixed, value-free", t1, t2)
			}
			if t1 == t3 || t1 == h {
				t.Error("tokens do not depend on the key and the column")
			}
			if l4, _ := tk.Apply(col("card_last4"), pan); l4 != "1111" {
				t.Errorf("last4 = %q", l4)
			}
			if _, err := tk.Apply(col("card_last4"), "12"); err == nil || strings.Contains(err.Error(), "12") {
				t.Errorf("last4 of a short value: %v (must fail without the value)", err)
			}
			if tk.KeyID() != "k1" {
				t.Errorf("KeyID = %q", tk.KeyID())
			}
			// The CDC path's implementation: what the tokenizer lands passes unchanged,
			// and a clear value is refused without being echoed.
			v := tokenize.Verifier{}
			note, _ := tk.Apply(registry.Column{Name: "note", Type: "text", PCI: registry.PCIRedact}, "card "+pan)
			for c, landed := range map[registry.Column]string{col("card_number"): t1, col("card_last4"): "1111",
				{Name: "note", Type: "text", PCI: registry.PCIRedact}: note} {
				if got, err := v.Apply(c, landed); err != nil || got != landed {
					t.Errorf("verifier on %s's landed form: %q, %v", c.Name, got, err)
				}
			}
			for c, clear := range map[registry.Column]string{col("card_number"): pan, col("card_last4"): "1111 ", col("card_holder"): "Ada Lovelace",
				{Name: "note", Type: "text", PCI: registry.PCIRedact}: "card " + pan} {
				if _, err := v.Apply(c, clear); err == nil || strings.Contains(err.Error(), clear) || !errors.Is(err, tokenize.ErrNotTokenized) {
					t.Errorf("verifier on a clear %s: %v (must refuse without the value)", c.Name, err)
				}
			}
		})
	}
}

func TestFileWriterContract(t *testing.T) {
	reg := testRegistry(t, time.Hour, 5*time.Minute)
	tb, _ := reg.Table("orders")
	cols := landing.Columns(tb)
	writers := map[string]landing.NewFileWriter{
		"landing.ParquetWriter": landing.OpenParquet,
	}
	at := time.Date(2026, 3, 10, 10, 0, 0, 123456000, time.UTC)
	row := []any{"0190a0e4-0000-7000-8000-000000000001", int64(42), int32(7), "paid", "EUR", "eu", int64(1000), int64(0), false, at, at, int64(3), "gift",
		"s00", "batch", "r", int32(1), at, at.Add(time.Hour), at, nil, nil, "gift_wrap"}
	if len(row) != len(cols) {
		t.Fatalf("row has %d values for %d columns", len(row), len(cols))
	}
	for name, nw := range writers {
		t.Run(name, func(t *testing.T) {
			var buf bytes.Buffer
			fw, err := nw(&buf, cols)
			if err != nil {
				t.Fatal(err)
			}
			for i := 0; i < 3; i++ {
				r := append([]any(nil), row...)
				if err := fw.Write(r); err != nil {
					t.Fatal(err)
				}
				r[0] = "overwritten after Write" // the writer keeps no reference
			}
			if err := fw.Close(); err != nil {
				t.Fatal(err)
			}
			ids := extracttest.ParquetColumn(t, buf.Bytes(), "order_id")
			if len(ids) != 3 || ids[0] != row[0] {
				t.Fatalf("order_id values %v", ids)
			}
			if v := extracttest.ParquetColumn(t, buf.Bytes(), "_lsn"); v[0] != "" {
				t.Fatalf("_lsn = %q, want NULL", v[0])
			}
		})
	}
}

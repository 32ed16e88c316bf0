package landing_test

import (
	"crypto/sha256"
	"fmt"
	"path/filepath"
	"testing"
	"time"

	"github.com/shopsphere/shardflow/internal/extract/extracttest"
	"github.com/shopsphere/shardflow/internal/landing"
	"github.com/shopsphere/shardflow/internal/registry"
	"github.com/shopsphere/shardflow/internal/testenv"
	"github.com/shopsphere/shardflow/internal/tokenize"
)

// BenchmarkPipeline is extract-window's work per row without the shard: the row
// pipeline (bucket check, ownership, tokenizing, lineage, checksum) and the Parquet
// writer, over rows as extract's scanner makes them, into sha256 as the extractor
// streams its file. It reports rows/s; `-cpuprofile` shows where a row's time goes.
func BenchmarkPipeline(b *testing.B) {
	reg, err := registry.Load(filepath.Join(testenv.Root(b), "shards.yaml"))
	if err != nil {
		b.Fatal(err)
	}
	tok, err := tokenize.New(reg.Tokenizer.KeyID, []byte("bench-key-bench-key-bench-key-bench-key"))
	if err != nil {
		b.Fatal(err)
	}
	for _, table := range []string{"orders", "payments"} {
		b.Run(table, func(b *testing.B) {
			t, _ := reg.Table(table)
			rows := benchRows(reg, t, 50_000)
			p, err := landing.NewPipeline(reg, t, tok, landing.OpenParquet)
			if err != nil {
				b.Fatal(err)
			}
			wm := 0
			for i, c := range t.Landed() {
				if c.Name == t.Watermark {
					wm = i
				}
			}
			b.ResetTimer()
			for range b.N {
				f, err := p.Open(sha256.New(), landing.Lineage{Shard: reg.Shards[0].ID, Source: landing.Batch,
					WindowStart: time.Date(2026, 3, 10, 12, 0, 0, 0, time.UTC), WindowEnd: time.Date(2026, 3, 10, 13, 0, 0, 0, time.UTC)}, nil)
				if err != nil {
					b.Fatal(err)
				}
				for _, r := range rows {
					if err := f.Add(r, landing.Change{Op: "r", CommitTS: r[wm].(time.Time)}); err != nil {
						b.Fatal(err)
					}
				}
				if err := f.Close(); err != nil {
					b.Fatal(err)
				}
			}
			b.ReportMetric(float64(b.N*len(rows))/b.Elapsed().Seconds(), "rows/s")
		})
	}
}

// benchRows makes n rows of table t with the values extracttest.Fill gives the shards:
// customers the first shard owns, watermarks 18 ms apart, few distinct short strings.
func benchRows(reg *registry.Registry, t registry.Table, n int) [][]any {
	at := time.Date(2026, 3, 10, 12, 0, 0, 0, time.UTC)
	custs := extracttest.CustomersOwnedBy(reg, reg.Shards[0].ID, at, 2000, 1)
	cards := []string{"4111111111111111", "5555555555554444", "4000056655665556"}
	out := make([][]any, n)
	for i := range out {
		wm := at.Add(time.Duration(i) * 18 * time.Millisecond)
		cust := custs[i%len(custs)]
		row := make([]any, 0, len(t.Columns))
		for _, c := range t.Landed() {
			var v any
			switch {
			case c.Name == landing.ColCustomerID:
				v = cust
			case c.Name == landing.ColBucket:
				v = int32(reg.Bucket(cust))
			case c.Name == t.Watermark, c.Type == "timestamptz":
				v = wm
			case c.Name == "card_number":
				v = cards[i%len(cards)]
			case c.Name == "card_last4":
				v = cards[i%len(cards)][12:]
			case c.Name == "note":
				v = nil
			case c.Type == "uuid":
				v = fmt.Sprintf("%08x-0000-4000-8000-%012x", i, len(c.Name))
			case c.Type == "text":
				v = fmt.Sprintf("%s-%d", c.Name, i%4)
			case c.Type == "bigint":
				v = int64(1000 + i%50_000)
			case c.Type == "integer":
				v = int32(i % 5)
			case c.Type == "boolean":
				v = false
			}
			row = append(row, v)
		}
		out[i] = row
	}
	return out
}

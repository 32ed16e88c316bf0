package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"sort"
	"sync"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/shopsphere/shardflow/internal/extract"
	"github.com/shopsphere/shardflow/internal/fleet"
	"github.com/shopsphere/shardflow/internal/landing"
	"github.com/shopsphere/shardflow/internal/objstore/dir"
	"github.com/shopsphere/shardflow/internal/registry"
	"github.com/shopsphere/shardflow/internal/tokenize"
	"github.com/shopsphere/shardflow/internal/window"
	"github.com/shopsphere/shardflow/internal/workload"
)

// bench is what every phase shares: the shard, the window, the traffic's rate.
type bench struct {
	reg    *registry.Registry
	shard  fleet.Shard
	window window.Window
	lake   string
	rate   float64
	phase  time.Duration
	seed   int64
}

// phase is one phase's write latencies and what loaded the shard meanwhile.
type phase struct {
	name, load, detail string
	lat                []time.Duration // sorted
}

// p is the q-quantile of the latencies in milliseconds (nearest rank).
func (p *phase) p(q float64) float64 {
	if len(p.lat) == 0 {
		return 0
	}
	i := int(q*float64(len(p.lat))+0.5) - 1
	i = max(0, min(i, len(p.lat)-1))
	return ms(p.lat[i])
}

func (p *phase) max() float64 {
	if len(p.lat) == 0 {
		return 0
	}
	return ms(p.lat[len(p.lat)-1])
}

func ms(d time.Duration) float64 { return float64(d) / float64(time.Millisecond) }

// pool merges the latencies of phases into one.
func pool(name string, ps ...*phase) *phase {
	out := &phase{name: name}
	for _, p := range ps {
		out.lat = append(out.lat, p.lat...)
	}
	sort.Slice(out.lat, func(i, j int) bool { return out.lat[i] < out.lat[j] })
	return out
}

// measure runs the traffic for one phase while during (if any) loads the shard, and
// keeps the latencies of the writes that committed while the load ran (a load that
// ends early, as a caught-up slot does, ends the phase's sample).
func (b *bench) measure(ctx context.Context, name, load string, during func(context.Context) (string, error)) (*phase, error) {
	type sample struct {
		at  time.Time
		lat time.Duration
	}
	var mu sync.Mutex
	var samples []sample
	pctx, cancel := context.WithTimeout(ctx, b.phase)
	defer cancel()
	p := &phase{name: name, load: load}
	loadEnd := time.Now().Add(b.phase)
	var wg sync.WaitGroup
	var loadErr error
	if during != nil {
		wg.Add(1)
		go func() {
			defer wg.Done()
			p.detail, loadErr = during(pctx)
			if pctx.Err() == nil { // the load ended before the phase
				loadEnd = time.Now()
				cancel()
			}
		}()
	}
	b.seed++
	_, err := workload.Run(pctx, workload.Config{Registry: b.reg, DSNs: map[string]string{b.shard.ID: b.shard.AdminDSN},
		Seed: b.seed, Duration: b.phase, Rate: b.rate, Writers: 4, Customers: 20_000,
		Observe: func(_ string, took time.Duration) {
			mu.Lock()
			samples = append(samples, sample{time.Now(), took})
			mu.Unlock()
		}})
	cancel()
	wg.Wait()
	if err != nil && !errors.Is(err, context.DeadlineExceeded) && !errors.Is(err, context.Canceled) {
		return nil, fmt.Errorf("traffic: %w", err)
	}
	if loadErr != nil {
		return nil, loadErr
	}
	for _, s := range samples {
		if !s.at.After(loadEnd) {
			p.lat = append(p.lat, s.lat)
		}
	}
	sort.Slice(p.lat, func(i, j int) bool { return p.lat[i] < p.lat[j] })
	if len(p.lat) == 0 {
		return nil, fmt.Errorf("no write committed during the phase")
	}
	return p, nil
}

// extractLoop lands the window with the real extract path, again and again, until ctx
// ends, and says how many runs and rows it landed.
func (b *bench) extractLoop(ctx context.Context) (string, error) {
	conn, err := pgx.Connect(ctx, b.shard.ExtractDSN)
	if err != nil {
		return "", fmt.Errorf("connect shard %s (extract role): %w", b.shard.ID, err)
	}
	defer conn.Close(context.WithoutCancel(ctx))
	tok, err := tokenize.New(b.reg.Tokenizer.KeyID, []byte("bench-key-bench-key-bench-key-bench-key"))
	if err != nil {
		return "", err
	}
	ex := &extract.Extractor{Registry: b.reg, Conn: conn, Store: dir.Store{Root: b.lake}, Tokenizer: tok, NewWriter: landing.OpenParquet,
		CodeVersion: "bench", Logger: slog.New(slog.NewTextHandler(io.Discard, nil))}
	var runs int
	var rows int64
	var busy time.Duration
	for ctx.Err() == nil {
		st := time.Now()
		res, err := ex.Run(ctx, extract.Job{Shard: b.shard.ID, Table: "orders", Window: b.window})
		if ctx.Err() != nil {
			break // cut off at the phase's end
		}
		if err != nil {
			return "", fmt.Errorf("extract window %s: %w", b.window, err)
		}
		runs++
		rows += res.Manifest.Rows
		busy += time.Since(st)
	}
	if runs == 0 {
		return "no extract finished within the phase (the last was cut off)", nil
	}
	return fmt.Sprintf("%d runs finished (+1 cut off), %.0f rows/s", runs, float64(rows)/busy.Seconds()), nil
}

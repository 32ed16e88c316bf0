// Package workload writes realistic order traffic into the shard fleet, routed the way
// the application routes it (pkg/routing): customer_id → bucket → the shard that owns
// the bucket now, corrected by what the shards' fences say during a move.
//
// Traffic: new orders with 1-5 items and a card payment (Luhn-valid PANs from test BIN
// ranges, holder, expiry, CVV, last4), status updates over time (placed → paid →
// shipped → delivered, some cancelled), partial and full refunds (a refund payment row
// and orders.refunded_cents), and occasional soft deletes (deleted = true on the order,
// its items and payments), for customers in several regions and currencies.
//
// Determinism: one generator, seeded, decides every operation in sequence (customer,
// items, amounts, cards, which order changes next), so the same seed and count give the
// same rows on the same shards. Ids are UUIDv7: their random bits come from the seed,
// their millisecond prefix from the clock. Operations on one order always go to the
// same writer connection, in order, whatever the concurrency.
//
// Moves are met as the application meets them: a shard's fence trigger refuses a write
// to a bucket being switched (the writer retries after a pause), to a bucket that moved
// away or has not arrived (the operation is routed again, to the shard the refusal
// names), or from a transaction begun before the switch (retried at once).
//
// Card data is never printed, logged or put in an error.
package workload

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"sort"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/shopsphere/shardflow/internal/registry"
	"github.com/shopsphere/shardflow/pkg/routing"
)

// Config says how much traffic to write and where.
type Config struct {
	Registry *registry.Registry
	// DSNs maps every shard that owns buckets now to a DSN of a role that may write
	// (the fleet's admin DSN).
	DSNs map[string]string
	Seed int64
	// Orders stops after this many new orders. Exactly one of Orders and Duration is set.
	Orders int
	// Duration stops after this long.
	Duration time.Duration
	// Rate is new orders per second over all shards; 0 means as fast as possible.
	Rate float64
	// Writers is the number of connections per shard (default 2).
	Writers int
	// Customers is the size of the customer population (default 10000).
	Customers int
	// Router routes each operation (default: routing.New(Registry)); share one with
	// other writers of the same fleet to share what it learns from fences.
	Router *routing.Router
	Logger *slog.Logger
	// Observe, when set, is called after every committed transaction with its
	// operation kind ("new_order", "status_update", "refund", "soft_delete") and its
	// latency, BEGIN to COMMIT acknowledged (the write latency the application sees).
	// It is called from the writers' goroutines, concurrently.
	Observe func(op string, took time.Duration)
}

// Validate reports a config that cannot run.
func (c Config) Validate() error {
	var errs []string
	if c.Registry == nil {
		errs = append(errs, "no registry")
	}
	if (c.Orders > 0) == (c.Duration > 0) {
		errs = append(errs, "set exactly one of orders (a count) and duration")
	}
	if c.Orders < 0 || c.Duration < 0 || c.Rate < 0 || c.Writers < 0 || c.Customers < 0 {
		errs = append(errs, "orders, duration, rate, writers and customers cannot be negative")
	}
	if len(errs) > 0 {
		return errors.New("workload config: " + strings.Join(errs, "; "))
	}
	return nil
}

// TableRows counts the rows one table received on one shard.
type TableRows struct {
	Inserted, Updated int64
}

// Stats is what Run wrote.
type Stats struct {
	Shards []string                         // every shard written to, sorted
	Rows   map[string]map[string]*TableRows // shard → table → rows
	Ops    map[string]int64                 // operation kind → committed transactions
	// Rerouted counts operations sent to another shard because the bucket had moved
	// (the router learned it from the shard's fence, or had learned it before).
	Rerouted int64
	// Fenced counts transactions a shard refused while a move switched their bucket;
	// each was retried.
	Fenced int64
	// Missed counts updates that found no row.
	Missed  int64
	Elapsed time.Duration
}

func newStats() *Stats {
	return &Stats{Rows: map[string]map[string]*TableRows{}, Ops: map[string]int64{}}
}

func (s *Stats) add(o *Stats) {
	for sh, tables := range o.Rows {
		if s.Rows[sh] == nil {
			s.Rows[sh] = map[string]*TableRows{}
		}
		for t, r := range tables {
			if s.Rows[sh][t] == nil {
				s.Rows[sh][t] = &TableRows{}
			}
			s.Rows[sh][t].Inserted += r.Inserted
			s.Rows[sh][t].Updated += r.Updated
		}
	}
	for k, v := range o.Ops {
		s.Ops[k] += v
	}
	s.Rerouted += o.Rerouted
	s.Fenced += o.Fenced
	s.Missed += o.Missed
}

func (s *Stats) count(shard, table string, inserted bool, n int64) {
	if s.Rows[shard] == nil {
		s.Rows[shard] = map[string]*TableRows{}
	}
	r := s.Rows[shard][table]
	if r == nil {
		r = &TableRows{}
		s.Rows[shard][table] = r
	}
	if inserted {
		r.Inserted += n
	} else {
		r.Updated += n
	}
}

// Print writes the rows per shard and table ("inserted/updated") and the operations.
func (s *Stats) Print(w io.Writer) {
	tables := []string{"orders", "order_items", "payments"}
	fmt.Fprintf(w, "%-8s", "shard")
	for _, t := range tables {
		fmt.Fprintf(w, " %22s", t+" ins/upd")
	}
	fmt.Fprintln(w)
	var tot [3]TableRows
	for _, sh := range s.Shards {
		fmt.Fprintf(w, "%-8s", sh)
		for i, t := range tables {
			r := s.Rows[sh][t]
			if r == nil {
				r = &TableRows{}
			}
			tot[i].Inserted += r.Inserted
			tot[i].Updated += r.Updated
			fmt.Fprintf(w, " %22s", fmt.Sprintf("%d/%d", r.Inserted, r.Updated))
		}
		fmt.Fprintln(w)
	}
	fmt.Fprintf(w, "%-8s", "total")
	for i := range tables {
		fmt.Fprintf(w, " %22s", fmt.Sprintf("%d/%d", tot[i].Inserted, tot[i].Updated))
	}
	fmt.Fprintln(w)
	var ops []string
	for _, k := range opNames {
		ops = append(ops, fmt.Sprintf("%s=%d", k, s.Ops[k]))
	}
	fmt.Fprintf(w, "transactions: %s rerouted=%d fenced=%d missed=%d in %s\n", strings.Join(ops, " "), s.Rerouted, s.Fenced, s.Missed, s.Elapsed.Round(time.Millisecond))
}

// Run writes traffic until the order count or the duration is reached, or ctx ends
// (then it returns what it wrote and ctx's error).
func Run(ctx context.Context, cfg Config) (*Stats, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	if cfg.Writers == 0 {
		cfg.Writers = 2
	}
	if cfg.Customers == 0 {
		cfg.Customers = 10_000
	}
	log := cfg.Logger
	if log == nil {
		log = slog.New(slog.NewTextHandler(io.Discard, nil))
	}
	reg := cfg.Registry
	router := cfg.Router
	if router == nil {
		router = routing.New(reg)
	}
	start := time.Now()

	// Operations whose bucket moved come back here to be routed again; the generator
	// sends them before new ones. pending counts operations routed and not finished.
	var (
		rmu      sync.Mutex
		rerouted []op
		pending  atomic.Int64
	)
	reroute := func(o op) {
		rmu.Lock()
		rerouted = append(rerouted, o)
		rmu.Unlock()
	}
	takeRerouted := func() []op {
		rmu.Lock()
		defer rmu.Unlock()
		out := rerouted
		rerouted = nil
		return out
	}

	// Writers for every shard that owns or may receive a bucket; connect before generating.
	type shardWriters struct{ queues []chan op }
	writers := map[string]*shardWriters{}
	results := make(chan *Stats, len(reg.Shards)*cfg.Writers)
	errc := make(chan error, len(reg.Shards)*cfg.Writers)
	runCtx, cancel := context.WithCancel(ctx)
	defer cancel()
	var wg sync.WaitGroup
	closeAll := func() {
		for _, sw := range writers {
			for _, q := range sw.queues {
				close(q)
			}
		}
	}
	for _, s := range reg.Shards {
		if s.State == registry.StateRetired {
			continue // owns nothing and never will
		}
		dsn, ok := cfg.DSNs[s.ID]
		if !ok {
			if len(s.Buckets) == 0 {
				continue
			}
			closeAll()
			wg.Wait()
			return nil, fmt.Errorf("workload: shard %s owns buckets but has no DSN", s.ID)
		}
		sw := &shardWriters{}
		for i := 0; i < cfg.Writers; i++ {
			conn, err := pgx.Connect(runCtx, dsn)
			if err != nil {
				closeAll()
				wg.Wait()
				return nil, fmt.Errorf("workload: connect shard %s: %w", s.ID, err)
			}
			q := make(chan op, 64)
			sw.queues = append(sw.queues, q)
			w := &writer{shard: s.ID, conn: conn, router: router, stats: newStats(), log: log,
				reroute: reroute, done: func() { pending.Add(-1) }, observe: cfg.Observe}
			wg.Add(1)
			go func() {
				defer wg.Done()
				defer conn.Close(context.Background())
				if err := w.loop(runCtx, q); err != nil {
					errc <- err
					cancel()
				}
				results <- w.stats
			}()
		}
		writers[s.ID] = sw
	}

	// route sends o to the writer of the shard that owns its bucket now. Every operation
	// on one order goes to the same writer of a shard, so they apply in order.
	route := func(o op) error {
		owner := router.Owner(o.bucket)
		sw := writers[owner]
		if sw == nil {
			return fmt.Errorf("workload: bucket %d is owned by shard %s, which has no writer", o.bucket, owner)
		}
		q := sw.queues[int(o.orderID[15])%len(sw.queues)]
		select {
		case q <- o:
			return nil
		case <-runCtx.Done():
			return runCtx.Err()
		}
	}
	sendRerouted := func() error {
		for _, o := range takeRerouted() {
			if err := route(o); err != nil {
				return err
			}
		}
		return nil
	}

	// One goroutine generates and routes every operation, in sequence.
	gen := newGenerator(cfg.Seed, cfg.Customers, reg.Bucket)
	var deadline time.Time
	if cfg.Duration > 0 {
		deadline = start.Add(cfg.Duration)
	}
	orders := 0
	var genErr error
generate:
	for {
		if err := sendRerouted(); err != nil {
			genErr = err
			break
		}
		if cfg.Orders > 0 && orders >= cfg.Orders {
			break
		}
		now := time.Now()
		if !deadline.IsZero() && !now.Before(deadline) {
			break
		}
		if cfg.Rate > 0 { // pace new orders: the n-th is due at start + n/rate
			due := start.Add(time.Duration(float64(orders) / cfg.Rate * float64(time.Second)))
			if wait := due.Sub(now); wait > 0 {
				select {
				case <-runCtx.Done():
					break generate
				case <-time.After(min(wait, 50*time.Millisecond)):
				}
				continue
			}
		}
		o := gen.next()
		if o.kind == opNewOrder {
			orders++
		}
		pending.Add(1)
		if err := route(o); err != nil {
			pending.Add(-1)
			if runCtx.Err() == nil {
				genErr = err
			}
			break
		}
	}
	// Rerouted operations keep coming until every routed one has finished.
	for genErr == nil && runCtx.Err() == nil && pending.Load() > 0 {
		if err := sendRerouted(); err != nil {
			genErr = err
			break
		}
		time.Sleep(5 * time.Millisecond)
	}
	closeAll()
	wg.Wait()
	close(results)
	close(errc)
	total := newStats()
	for st := range results {
		total.add(st)
	}
	for sh := range total.Rows {
		total.Shards = append(total.Shards, sh)
	}
	sort.Strings(total.Shards)
	total.Elapsed = time.Since(start)
	var errs []error
	if genErr != nil {
		errs = append(errs, genErr)
	}
	for err := range errc {
		errs = append(errs, err)
	}
	if len(errs) == 0 && ctx.Err() != nil {
		errs = append(errs, ctx.Err())
	}
	return total, errors.Join(errs...)
}

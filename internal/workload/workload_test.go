package workload

import (
	"context"
	"crypto/sha256"
	"fmt"
	"math/rand/v2"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/shopsphere/shardflow/internal/fleet"
	"github.com/shopsphere/shardflow/internal/fleet/fleettest"
	"github.com/shopsphere/shardflow/internal/registry"
)

func TestLuhn(t *testing.T) {
	for _, pan := range []string{"4111111111111111", "5555555555554444", "378282246310005", "6011111111111117", "4242424242424242"} {
		if !LuhnValid(pan) {
			t.Errorf("LuhnValid(%s) = false", pan)
		}
	}
	for _, pan := range []string{"4111111111111112", "1234", "", "4111-1111-1111-1111", "0"} {
		if LuhnValid(pan) {
			t.Errorf("LuhnValid(%q) = true", pan)
		}
	}
}

func TestGeneratedCardsAreTestPANs(t *testing.T) {
	r := rand.New(rand.NewPCG(1, 2))
	for i := 0; i < 20000; i++ {
		c := newCard(r, "A B")
		if !LuhnValid(c.Number) {
			t.Fatalf("card %d fails Luhn (last4 %s)", i, c.Last4())
		}
		var bin *testBIN
		for j := range testBINs {
			if strings.HasPrefix(c.Number, testBINs[j].prefix) {
				bin = &testBINs[j]
			}
		}
		if bin == nil || len(c.Number) != bin.length || len(c.CVV) != bin.cvvLen {
			t.Fatalf("card %d: not from a test BIN, or wrong length (last4 %s)", i, c.Last4())
		}
		if s := fmt.Sprintf("%v %+v %#v %s", c, c, c, c); strings.Contains(s, c.Number) {
			t.Fatalf("formatting a card prints its number: %q", strings.ReplaceAll(s, c.Number, "<PAN>"))
		}
	}
}

// The generator is a pure function of the seed.
func TestGeneratorDeterministic(t *testing.T) {
	trace := func(seed int64) string {
		g := newGenerator(seed, 500, func(c int64) int { return registry.Bucket(c, 4096) })
		h := sha256.New()
		for i := 0; i < 5000; i++ {
			o := g.next()
			fmt.Fprintf(h, "%d %s %x %d %d %s %d %v %s %s %d %d|", o.kind, o.orderID[8:], o.paymentID[8:], o.customer, o.bucket,
				o.currency, o.total, o.items, o.status, o.paymentStatus, o.refundCents, o.refundedNow)
			h.Write([]byte(o.card.Number + o.card.Holder + o.card.Expiry + o.card.CVV))
		}
		return fmt.Sprintf("%x", h.Sum(nil))
	}
	if a, b := trace(42), trace(42); a != b {
		t.Errorf("seed 42 gave two traces")
	}
	if a, b := trace(42), trace(43); a == b {
		t.Errorf("seeds 42 and 43 gave the same trace")
	}
}

type shardRow struct {
	customer int64
	bucket   int
	at       time.Time
}

// shardRows reads customer, bucket and updated_at of every row of every table.
func shardRows(t *testing.T, dsn string) map[string][]shardRow {
	t.Helper()
	ctx := context.Background()
	c, err := pgx.Connect(ctx, dsn)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close(ctx)
	out := map[string][]shardRow{}
	for _, table := range fleet.Tables {
		rows, err := c.Query(ctx, "SELECT customer_id, bucket, updated_at FROM "+table)
		if err != nil {
			t.Fatal(err)
		}
		out[table], err = pgx.CollectRows(rows, func(r pgx.CollectableRow) (shardRow, error) {
			var x shardRow
			return x, r.Scan(&x.customer, &x.bucket, &x.at)
		})
		if err != nil {
			t.Fatal(err)
		}
	}
	return out
}

// Every row of every table on every shard has bucket = Bucket(customer_id) and is
// owned by that shard; PANs are Luhn-valid and last4 matches.
func TestRowsLandOnTheOwningShard(t *testing.T) {
	reg := fleettest.Load(t, "../../shards.yaml")
	f := fleettest.Start(t, reg)
	ctx := context.Background()
	dsns := map[string]string{}
	for _, s := range f.Shards {
		dsns[s.ID] = s.AdminDSN
	}
	st, err := Run(ctx, Config{Registry: reg, DSNs: dsns, Seed: 7, Duration: 3 * time.Second, Rate: 400, Writers: 2, Customers: 3000})
	if err != nil {
		t.Fatal(err)
	}
	if st.Ops["new_order"] == 0 || st.Ops["status_update"] == 0 || st.Ops["refund"] == 0 {
		t.Fatalf("traffic lacks an operation kind: %v", st.Ops)
	}
	now := time.Now()
	for _, s := range f.Shards {
		var total int64
		for table, all := range shardRows(t, s.AdminDSN) {
			bad := 0
			for _, r := range all {
				if r.bucket != reg.Bucket(r.customer) || !reg.Owns(s.ID, r.bucket, now) {
					if bad++; bad <= 5 {
						t.Errorf("shard %s table %s: customer %d bucket %d (bucket of customer: %d) is not the shard's", s.ID, table, r.customer, r.bucket, reg.Bucket(r.customer))
					}
				}
			}
			total += int64(len(all))
		}
		c, err := pgx.Connect(ctx, s.AdminDSN)
		if err != nil {
			t.Fatal(err)
		}
		var payments, badPAN int
		if err := c.QueryRow(ctx, `SELECT count(*) FROM payments`).Scan(&payments); err != nil {
			t.Fatal(err)
		}
		prow, err := c.Query(ctx, `SELECT card_number, card_last4, kind, card_cvv IS NULL FROM payments`)
		if err != nil {
			t.Fatal(err)
		}
		for prow.Next() {
			var pan, last4, kind string
			var noCVV bool
			if err := prow.Scan(&pan, &last4, &kind, &noCVV); err != nil {
				t.Fatal(err)
			}
			if !LuhnValid(pan) || !strings.HasSuffix(pan, last4) || (kind == "refund") != noCVV {
				badPAN++
			}
		}
		prow.Close()
		c.Close(ctx)
		if badPAN > 0 {
			t.Errorf("shard %s: %d of %d payments have a PAN failing Luhn, a wrong last4 or a CVV on a refund", s.ID, badPAN, payments)
		}
		var ins int64
		for _, r := range st.Rows[s.ID] {
			ins += r.Inserted
		}
		if ins != total || ins == 0 {
			t.Errorf("shard %s: %d rows on the shard, the generator reports %d inserted", s.ID, total, ins)
		}
	}
	if st.Rerouted != 0 || st.Fenced != 0 {
		t.Errorf("no move ran, yet rerouted %d fenced %d", st.Rerouted, st.Fenced)
	}
}

// The shard's fence trigger as the traffic generator meets it mid-run: buckets
// 2048-2303 of s02 are fenced, then s03 owns them from its marker and s02 says they
// moved. The generator waits out the fence, learns the move from s02's refusal and
// writes those buckets to s03 from then on: s02 holds no row of them stamped after its
// fence went up, s03 none before its marker; nothing failed.
func TestTrafficHonoursTheFence(t *testing.T) {
	reg := fleettest.Load(t, "../../shards.yaml")
	f := fleettest.Start(t, reg)
	ctx := context.Background()
	dsns := map[string]string{}
	for _, s := range f.Shards {
		dsns[s.ID] = s.AdminDSN
	}
	s02, _ := f.Shard("s02")
	s03, _ := f.Shard("s03")
	exec := func(dsn, q string, args ...any) time.Time {
		c, err := pgx.Connect(ctx, dsn)
		if err != nil {
			t.Error(err)
			return time.Time{}
		}
		defer c.Close(ctx)
		if _, err := c.Exec(ctx, q, args...); err != nil {
			t.Error(err)
		}
		var at time.Time
		if err := c.QueryRow(ctx, "SELECT clock_timestamp()").Scan(&at); err != nil {
			t.Error(err)
		}
		return at
	}
	done := make(chan struct{})
	var fencedAt, markerAt time.Time
	go func() {
		defer close(done)
		time.Sleep(time.Second)
		exec(s03.AdminDSN, `INSERT INTO shardflow_bucket_fence (epoch, role, bucket_lo, bucket_hi, state, peer) VALUES (2, 'to', 2048, 2303, 'incoming', 's02')`)
		fencedAt = exec(s02.AdminDSN, `INSERT INTO shardflow_bucket_fence (epoch, role, bucket_lo, bucket_hi, state, peer) VALUES (2, 'from', 2048, 2303, 'fenced', 's03')`)
		time.Sleep(300 * time.Millisecond)
		markerAt = exec(s03.AdminDSN, `UPDATE shardflow_bucket_fence SET state = 'owned', marker_at = clock_timestamp() WHERE epoch = 2`)
		exec(s02.AdminDSN, `UPDATE shardflow_bucket_fence SET state = 'moved', marker_at = $1 WHERE epoch = 2`, fencedAt)
	}()
	st, err := Run(ctx, Config{Registry: reg, DSNs: dsns, Seed: 3, Duration: 3 * time.Second, Rate: 300, Writers: 2, Customers: 2000})
	<-done
	if err != nil {
		t.Fatal(err)
	}
	if st.Fenced == 0 || st.Rerouted == 0 {
		t.Errorf("fenced %d rerouted %d: the fence was not met", st.Fenced, st.Rerouted)
	}
	count := func(dsn string, keep func(shardRow) bool) int {
		n := 0
		for _, all := range shardRows(t, dsn) {
			for _, r := range all {
				if r.bucket >= 2048 && r.bucket <= 2303 && keep(r) {
					n++
				}
			}
		}
		return n
	}
	if n := count(s02.AdminDSN, func(r shardRow) bool { return !r.at.Before(fencedAt) }); n != 0 {
		t.Errorf("s02 holds %d rows of the fenced buckets stamped after its fence", n)
	}
	if n := count(s03.AdminDSN, func(r shardRow) bool { return r.at.Before(markerAt) }); n != 0 {
		t.Errorf("s03 holds %d rows of the buckets stamped before its marker", n)
	}
	if n := count(s03.AdminDSN, func(shardRow) bool { return true }); n == 0 {
		t.Error("s03 received nothing of the moved buckets")
	}
	t.Logf("ops %v fenced %d rerouted %d missed %d", st.Ops, st.Fenced, st.Rerouted, st.Missed)
}

// The same seed writes the same rows (ids' random bits included) to the same shards;
// another seed does not.
func TestSameSeedSameRows(t *testing.T) {
	reg := fleettest.Load(t, "../../shards.yaml")
	f := fleettest.Start(t, reg)
	ctx := context.Background()
	dsns := map[string]string{}
	for _, s := range f.Shards {
		dsns[s.ID] = s.AdminDSN
	}
	run := func(seed int64) (map[string]string, *Stats) {
		t.Helper()
		st, err := Run(ctx, Config{Registry: reg, DSNs: dsns, Seed: seed, Orders: 300, Writers: 3, Customers: 200})
		if err != nil {
			t.Fatal(err)
		}
		prints := map[string]string{}
		for _, s := range f.Shards {
			prints[s.ID] = fingerprint(t, s.AdminDSN)
		}
		return prints, st
	}
	a, sa := run(42)
	b, sb := run(42)
	c, _ := run(43)
	for id := range a {
		if a[id] != b[id] {
			t.Errorf("shard %s: seed 42 twice gave different rows", id)
		}
		if a[id] == c[id] {
			t.Errorf("shard %s: seeds 42 and 43 gave the same rows", id)
		}
	}
	var out1, out2 strings.Builder
	sa.Elapsed, sb.Elapsed = 0, 0
	sa.Print(&out1)
	sb.Print(&out2)
	if out1.String() != out2.String() {
		t.Errorf("stats differ:\n%s\n%s", out1.String(), out2.String())
	}
	if sa.Ops["new_order"] != 300 {
		t.Errorf("new orders %d, want 300", sa.Ops["new_order"])
	}
}

// fingerprint hashes every row of a shard without ids' clock bits and timestamps, then
// empties the tables.
func fingerprint(t *testing.T, dsn string) string {
	t.Helper()
	ctx := context.Background()
	c, err := pgx.Connect(ctx, dsn)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close(ctx)
	var lines []string
	for _, q := range []string{
		`SELECT 'o', right(order_id::text, 17), customer_id, bucket, status, currency, region, total_cents, refunded_cents, deleted, row_version FROM orders`,
		`SELECT 'i', right(order_id::text, 17), line_no, customer_id, bucket, sku, quantity, unit_price_cents, deleted, row_version FROM order_items`,
		`SELECT 'p', right(payment_id::text, 17), right(order_id::text, 17), customer_id, bucket, kind, status, amount_cents, currency,
		        md5(card_number || card_holder || card_expiry || coalesce(card_cvv, '-')), card_last4, deleted, row_version FROM payments`,
	} {
		rows, err := c.Query(ctx, q)
		if err != nil {
			t.Fatal(err)
		}
		for rows.Next() {
			v, err := rows.Values()
			if err != nil {
				t.Fatal(err)
			}
			lines = append(lines, fmt.Sprint(v...))
		}
		rows.Close()
	}
	if _, err := c.Exec(ctx, "TRUNCATE orders, order_items, payments"); err != nil {
		t.Fatal(err)
	}
	sort.Strings(lines)
	return fmt.Sprintf("%d rows %x", len(lines), sha256.Sum256([]byte(strings.Join(lines, "\n"))))
}

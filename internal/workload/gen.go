package workload

import (
	"encoding/binary"
	"fmt"
	"hash/fnv"
	"math/rand/v2"

	"github.com/google/uuid"
)

// opKind is what one operation does.
type opKind int

const (
	opNewOrder opKind = iota // insert an order, its items and its payment (authorized)
	opAdvance                // move an order along placed → paid → shipped → delivered, or cancel it
	opRefund                 // insert a refund payment, raise orders.refunded_cents
	opDelete                 // soft-delete an order with its items and payments
)

var opNames = [...]string{"new_order", "status_update", "refund", "soft_delete"}

func (k opKind) String() string { return opNames[k] }

// Order statuses and the way an order moves between them.
const (
	stPlaced    = "placed"
	stPaid      = "paid"
	stShipped   = "shipped"
	stDelivered = "delivered"
	stCancelled = "cancelled"
	stRefunded  = "refunded"
)

var nextStatus = map[string]string{stPlaced: stPaid, stPaid: stShipped, stShipped: stDelivered}

// region is where a customer lives and the currency it pays in; fx converts the
// catalogue's EUR cents into the currency's minor units.
type region struct {
	name     string
	currency string
	fx       float64
}

var regions = []region{
	{"eu-west", "EUR", 1},
	{"eu-central", "EUR", 1},
	{"us-east", "USD", 1.08},
	{"us-west", "USD", 1.08},
	{"uk", "GBP", 0.86},
	{"ap-northeast", "JPY", 1.62}, // yen have no minor unit: 1 EUR cent ≈ 1.62 yen
	{"ap-southeast", "SGD", 1.45},
	{"sa-east", "BRL", 5.4},
}

var firstNames = []string{"Ada", "Grace", "Alan", "Edsger", "Barbara", "Donald", "Frances", "John", "Katherine", "Linus", "Margaret", "Niklaus", "Radia", "Tim", "Yukihiro", "Zhang"}
var lastNames = []string{"Lovelace", "Hopper", "Turing", "Dijkstra", "Liskov", "Knuth", "Allen", "Backus", "Johnson", "Torvalds", "Hamilton", "Wirth", "Perlman", "Berners-Lee", "Matsumoto", "Wei"}

// customer is one shopper; everything about it follows from the seed and its id.
type customer struct {
	id     int64
	region region
	card   Card
}

// item is one order line.
type item struct {
	sku       string
	quantity  int
	unitCents int64
}

// order is the generator's memory of an order it created.
type order struct {
	id        uuid.UUID
	cust      *customer
	bucket    int
	status    string
	total     int64
	refunded  int64
	paymentID uuid.UUID
	items     []item
	deleted   bool
}

// op is one unit of work for a writer: one transaction on one shard. It carries copies
// of the values it writes, so later changes to the order do not race with it.
type op struct {
	seq      int64
	kind     opKind
	orderID  uuid.UUID
	customer int64
	bucket   int
	// new order
	currency, region string
	total            int64
	items            []item
	paymentID        uuid.UUID
	card             Card
	note             *string // orders.note: nil, ordinary text, or text with the card's number
	// status update
	status, paymentStatus string
	// refund
	refundID     uuid.UUID
	refundCents  int64
	refundedNow  int64 // orders.refunded_cents after the refund
	refundStatus string
}

// generator turns a seed into the same sequence of operations every time. It is not
// safe for concurrent use; Run calls it from one goroutine.
type generator struct {
	seed       uint64
	rng        *rand.Rand    // every choice
	ids        *rand.ChaCha8 // the random bits of UUIDv7 ids
	notes      *rand.Rand    // order notes (notes.go), apart from rng
	customers  int
	bucket     func(int64) int
	known      map[int64]*customer
	open       []*order // orders that can still change status
	refundable []*order
	all        []*order
	seq        int64
}

func newGenerator(seed int64, customers int, bucket func(int64) int) *generator {
	s := uint64(seed)
	return &generator{
		seed:      s,
		rng:       rand.New(rand.NewPCG(s, 0x5eed_0f_0bde75)),
		ids:       rand.NewChaCha8(idSeed(s)),
		notes:     rand.New(rand.NewPCG(s, 0x6e07e5)),
		customers: customers,
		bucket:    bucket,
		known:     map[int64]*customer{},
	}
}

// FirstCustomerID is the id of the first customer; ids are consecutive from it.
const FirstCustomerID = 100_000

// customer returns customer i (0-based) of the population.
func (g *generator) customer(i int) *customer {
	id := int64(FirstCustomerID + i)
	if c, ok := g.known[id]; ok {
		return c
	}
	h := fnv.New64a()
	var b [16]byte
	binary.BigEndian.PutUint64(b[:8], g.seed)
	binary.BigEndian.PutUint64(b[8:], uint64(id))
	_, _ = h.Write(b[:])
	r := rand.New(rand.NewPCG(h.Sum64(), uint64(id)))
	c := &customer{id: id, region: regions[r.IntN(len(regions))]}
	c.card = newCard(r, firstNames[r.IntN(len(firstNames))]+" "+lastNames[r.IntN(len(lastNames))])
	g.known[id] = c
	return c
}

// pickCustomer skews toward the first customers: a few shop a lot, most rarely.
func (g *generator) pickCustomer() *customer {
	f := g.rng.Float64()
	return g.customer(int(f * f * float64(g.customers)))
}

func (g *generator) newID() uuid.UUID {
	id, err := uuid.NewV7FromReader(g.ids)
	if err != nil {
		panic(fmt.Sprintf("uuid: %v", err)) // reading from a PRNG does not fail
	}
	return id
}

func idSeed(s uint64) [32]byte {
	var b [32]byte
	binary.BigEndian.PutUint64(b[:], s)
	copy(b[8:], "shardflow workload ids")
	return b
}

// next returns the next operation. A new order is about 60% of the operations; the rest
// change orders created earlier.
func (g *generator) next() op {
	g.seq++
	r := g.rng.Float64()
	switch {
	case r < 0.30 && len(g.open) > 0:
		return g.advance()
	case r < 0.36 && len(g.refundable) > 0:
		return g.refund()
	case r < 0.38 && len(g.all) > 0:
		if o := g.all[g.rng.IntN(len(g.all))]; !o.deleted {
			return g.softDelete(o)
		}
	}
	return g.newOrder()
}

func (g *generator) newOrder() op {
	c := g.pickCustomer()
	o := &order{id: g.newID(), cust: c, bucket: g.bucket(c.id), status: stPlaced, paymentID: g.newID()}
	n := 1 + g.rng.IntN(5)
	for i := 0; i < n; i++ {
		sku := g.rng.IntN(2000)
		eur := int64(199 + (sku*7919)%24800) // the catalogue: a fixed price per SKU
		it := item{sku: fmt.Sprintf("SKU-%05d", sku), quantity: 1 + g.rng.IntN(3), unitCents: int64(float64(eur) * c.region.fx)}
		o.items = append(o.items, it)
		o.total += it.unitCents * int64(it.quantity)
	}
	g.open = append(g.open, o)
	g.all = append(g.all, o)
	return op{seq: g.seq, kind: opNewOrder, orderID: o.id, customer: c.id, bucket: o.bucket,
		currency: c.region.currency, region: c.region.name, total: o.total, items: o.items,
		paymentID: o.paymentID, card: c.card, note: note(g.notes, c.card), status: stPlaced, paymentStatus: "authorized"}
}

func (g *generator) advance() op {
	i := g.rng.IntN(len(g.open))
	o := g.open[i]
	to, pay := nextStatus[o.status], ""
	switch {
	case o.status == stPlaced && g.rng.IntN(10) == 0:
		to, pay = stCancelled, "voided"
	case o.status == stPlaced:
		pay = "captured"
	}
	o.status = to
	if to == stShipped {
		g.refundable = append(g.refundable, o)
	}
	if to == stDelivered || to == stCancelled {
		g.open[i] = g.open[len(g.open)-1]
		g.open = g.open[:len(g.open)-1]
	}
	return op{seq: g.seq, kind: opAdvance, orderID: o.id, customer: o.cust.id, bucket: o.bucket, status: to, paymentStatus: pay, paymentID: o.paymentID}
}

func (g *generator) refund() op {
	i := g.rng.IntN(len(g.refundable))
	o := g.refundable[i]
	left := o.total - o.refunded
	amount := left
	if len(o.items) > 1 && g.rng.IntN(2) == 0 { // one line back, or everything
		it := o.items[g.rng.IntN(len(o.items))]
		amount = min(left, it.unitCents*int64(it.quantity))
	}
	o.refunded += amount
	status := ""
	if o.refunded >= o.total {
		status = stRefunded
		o.status = stRefunded
		g.refundable[i] = g.refundable[len(g.refundable)-1]
		g.refundable = g.refundable[:len(g.refundable)-1]
		for j, x := range g.open { // a shipped order refunded in full goes nowhere else
			if x == o {
				g.open[j] = g.open[len(g.open)-1]
				g.open = g.open[:len(g.open)-1]
				break
			}
		}
	}
	return op{seq: g.seq, kind: opRefund, orderID: o.id, customer: o.cust.id, bucket: o.bucket,
		currency: o.cust.region.currency, refundID: g.newID(), refundCents: amount, refundedNow: o.refunded,
		refundStatus: status, card: o.cust.card}
}

func (g *generator) softDelete(o *order) op {
	o.deleted = true
	remove := func(xs []*order) []*order {
		for j, x := range xs {
			if x == o {
				xs[j] = xs[len(xs)-1]
				return xs[:len(xs)-1]
			}
		}
		return xs
	}
	g.open = remove(g.open)
	g.refundable = remove(g.refundable)
	return op{seq: g.seq, kind: opDelete, orderID: o.id, customer: o.cust.id, bucket: o.bucket}
}

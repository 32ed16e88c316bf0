package registry

import "testing"

// The bucket function is part of the data: rows store its result. These vectors were
// computed by an independent implementation of FNV-1a-64 (Python) over the 8-byte
// big-endian customer_id. If this test fails, the change would re-route customers on a
// live fleet.
func TestBucketVectors(t *testing.T) {
	pinned := []struct {
		customer int64
		want     int
	}{
		{0, 2501}, {1, 2066}, {2, 1631}, {42, 3479}, {1_000_000, 3346}, {-1, 2109},
		{9_223_372_036_854_775_807, 1213},
	}
	for _, p := range pinned {
		if got := Bucket(p.customer, 4096); got != p.want {
			t.Errorf("Bucket(%d, 4096) = %d, want %d", p.customer, got, p.want)
		}
	}
}

func TestBucketSpreadsCustomers(t *testing.T) {
	const n, customers = 64, 64_000
	counts := make([]int, n)
	for c := int64(1); c <= customers; c++ {
		counts[Bucket(c, n)]++
	}
	for b, c := range counts {
		if c < customers/n/2 || c > customers/n*2 {
			t.Errorf("bucket %d holds %d of %d sequential customers; the hash does not spread", b, c, customers)
		}
	}
}

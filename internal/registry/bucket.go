package registry

import (
	"encoding/binary"
	"hash/fnv"
)

// BucketFunction is the name of the only routing function, as written in shards.yaml.
const BucketFunction = "fnv1a64-int64be"

// Bucket maps a customer to one of n virtual buckets:
//
//	bucket(customer_id) = FNV-1a-64(customer_id as 8 bytes, big-endian two's complement) mod n
//
// It is computed here and only here. The application stores the result in every row's
// bucket column, so SQL (on the shards, in dq and in dbt) reads the column and never
// re-implements the hash. The test vectors in bucket_test.go pin it.
func Bucket(customerID int64, n int) int {
	var b [8]byte
	binary.BigEndian.PutUint64(b[:], uint64(customerID))
	h := fnv.New64a()
	_, _ = h.Write(b[:])
	return int(h.Sum64() % uint64(n))
}

// Bucket maps a customer to a bucket with this registry's bucket count.
func (r *Registry) Bucket(customerID int64) int { return Bucket(customerID, r.Routing.Buckets) }

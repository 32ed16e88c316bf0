package landing

import (
	"math/big"
	"testing"
)

// TestKeyTextAndRowHash pins the Go side of docs/contracts.md §5: the key's text form
// and h(row) = the first 15 hex digits of md5(key_text || '|' || row_version), computed
// independently (Python's hashlib) for these vectors. ChecksumSQL computes the same in
// SQL: extract's self-check compares the two on PostgreSQL, every load on the warehouse.
func TestKeyTextAndRowHash(t *testing.T) {
	uuid := "0192f0c4-7b1e-7cc2-9a4e-3f1d2c3b4a59"
	for _, tc := range []struct {
		key     string
		version int64
		want    uint64
	}{
		{KeyText(KeyValueText(uuid)), 1, 245159676556413975},
		{KeyText(KeyValueText(int64(42)), KeyValueText(int32(7))), 3, 226555208163931532},
	} {
		if got := RowHash(tc.key, tc.version); got != tc.want {
			t.Errorf("RowHash(%q, %d) = %d, want %d", tc.key, tc.version, got, tc.want)
		}
	}
	if KeyValueText(nil) != "" || KeyValueText(uint8(5)) != "5" {
		t.Errorf("KeyValueText(nil), KeyValueText(uint8(5)) = %q, %q", KeyValueText(nil), KeyValueText(uint8(5)))
	}
	var a, b Checksum
	a.Add("x", 1)
	a.Add("y", 2)
	b.Add("y", 2)
	b.Add("x", 1)
	want := new(big.Int).Add(new(big.Int).SetUint64(RowHash("x", 1)), new(big.Int).SetUint64(RowHash("y", 2)))
	if a.String() != b.String() || a.String() != want.String() || a.Rows() != 2 {
		t.Errorf("checksum %s (%d rows) and in another order %s, want %s", a.String(), a.Rows(), b.String(), want)
	}
}

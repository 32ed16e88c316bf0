package landing

import (
	"math"
	"testing"
	"unsafe"

	"github.com/parquet-go/parquet-go"
)

// TestParquetValueLayout: the cells Write builds in place (landing.value) are the
// parquet.Value the constructors and Level give, for every kind Write makes, its
// extremes, NULL and a column index past 255.
func TestParquetValueLayout(t *testing.T) {
	s := "card"
	minInt64, minus1 := int64(math.MinInt64), int32(-1)
	for _, col := range []int{0, 7, 300} {
		leaf := ^uint16(col)
		for _, c := range []struct {
			name string
			got  value
			want parquet.Value
		}{
			{"null", value{col: leaf}, parquet.NullValue().Level(0, 0, col)},
			{"string", value{ptr: unsafe.StringData(s), u64: uint64(len(s)), kind: ^int8(parquet.ByteArray), def: 1, col: leaf},
				parquet.ByteArrayValue(unsafe.Slice(unsafe.StringData(s), len(s))).Level(0, 1, col)},
			{"empty string", value{kind: ^int8(parquet.ByteArray), def: 1, col: leaf}, parquet.ByteArrayValue(nil).Level(0, 1, col)},
			{"int64 min", value{u64: uint64(minInt64), kind: ^int8(parquet.Int64), def: 1, col: leaf},
				parquet.Int64Value(minInt64).Level(0, 1, col)},
			{"int32 -1", value{u64: uint64(minus1), kind: ^int8(parquet.Int32), def: 1, col: leaf}, parquet.Int32Value(minus1).Level(0, 1, col)},
			{"true", value{u64: 1, kind: ^int8(parquet.Boolean), def: 1, col: leaf}, parquet.BooleanValue(true).Level(0, 1, col)},
			{"false", value{kind: ^int8(parquet.Boolean), def: 1, col: leaf}, parquet.BooleanValue(false).Level(0, 1, col)},
		} {
			if got := *(*parquet.Value)(unsafe.Pointer(&c.got)); got != c.want {
				t.Errorf("column %d, %s: %#v, parquet-go makes %#v", col, c.name, got, c.want)
			}
		}
	}
}

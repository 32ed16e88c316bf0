package extract

import (
	"context"
	"os"
	"reflect"
	"testing"

	"github.com/shopsphere/shardflow/internal/extract/extracttest"
	"github.com/shopsphere/shardflow/internal/registry"
)

// TestScannerDecodesAsPgtype: the scanner's direct binary decoding gives the values
// pgtype's scan plans give (what extract read before it), to the Go representation,
// for every landed type: NULLs, empty text, the extremes of each integer, timestamps and
// dates at the edges of the direct range and beyond it (infinities, BC, year 294276),
// which go through pgtype.
func TestScannerDecodesAsPgtype(t *testing.T) {
	b, err := os.ReadFile("../../shards.yaml")
	if err != nil {
		t.Fatal(err)
	}
	reg, err := extracttest.OneShard(b, "s00")
	if err != nil {
		t.Fatal(err)
	}
	conn := connect(t, startShards(t, reg)["s00"].ExtractDSN)
	cols := []registry.Column{{Name: "u", Type: "uuid"}, {Name: "t", Type: "text"}, {Name: "v", Type: "text"},
		{Name: "b", Type: "bigint"}, {Name: "i", Type: "integer"}, {Name: "bo", Type: "boolean"},
		{Name: "ts", Type: "timestamptz"}, {Name: "d", Type: "date"}}
	const q = `SELECT u::uuid, t::text, t::varchar, b::int8, i::int4, bo::bool, ts::timestamptz, d::date FROM (VALUES
		('00000000-0000-0000-0000-000000000000', '', 0, 0, false, '2000-01-01 00:00:00+00', '2000-01-01'),
		('A0EEBC99-9C0B-4EF8-BB6D-6BB9BD380A11', 'héllo wörld', -9223372036854775808, -2147483648, true, '0001-01-01 00:00:00+00', '0001-01-01'),
		('ffffffff-ffff-ffff-ffff-ffffffffffff', 'x', 9223372036854775807, 2147483647, true, '9999-12-31 23:59:59.999999+00', '9999-12-31'),
		(NULL, NULL, NULL, NULL, NULL, NULL, NULL),
		('a0eebc99-9c0b-4ef8-bb6d-6bb9bd380a12', 'a', 1, 1, true, 'infinity', 'infinity'),
		('a0eebc99-9c0b-4ef8-bb6d-6bb9bd380a13', 'b', -1, -1, false, '-infinity', '-infinity'),
		('a0eebc99-9c0b-4ef8-bb6d-6bb9bd380a14', 'c', 3, 3, true, '1969-12-31 23:59:59.123456+00', '1969-12-31'),
		('a0eebc99-9c0b-4ef8-bb6d-6bb9bd380a15', 'd', 4, 4, true, '2026-03-10 12:00:00.000001-07', '2026-03-10'),
		('a0eebc99-9c0b-4ef8-bb6d-6bb9bd380a16', 'e', 5, 5, true, '0001-01-01 00:00:00+00 BC', '0001-12-31 BC'),
		('a0eebc99-9c0b-4ef8-bb6d-6bb9bd380a17', 'f', 6, 6, true, '294276-12-31 23:59:59+00', '5874897-12-31')
	) v(u, t, b, i, bo, ts, d)`
	read := func(direct bool) [][]any {
		sc, err := newScanner(cols)
		if err != nil {
			t.Fatal(err)
		}
		rows, err := conn.Query(context.Background(), q)
		if err != nil {
			t.Fatal(err)
		}
		defer rows.Close()
		if err := sc.plan(rows.FieldDescriptions()); err != nil {
			t.Fatal(err)
		}
		for i, k := range sc.bin {
			if direct && k == viaPgtype {
				t.Errorf("column %s: not decoded directly", cols[i].Name)
			}
			if !direct {
				sc.bin[i] = viaPgtype
			}
		}
		var out [][]any
		for rows.Next() {
			row := make([]any, len(cols))
			if err := sc.decode(conn.TypeMap(), rows.RawValues(), row); err != nil {
				t.Fatal(err)
			}
			out = append(out, row)
		}
		if err := rows.Err(); err != nil {
			t.Fatal(err)
		}
		return out
	}
	want, got := read(false), read(true)
	if len(got) != 10 || len(want) != 10 {
		t.Fatalf("%d and %d rows, want 10", len(got), len(want))
	}
	for r := range want {
		for c := range want[r] {
			if !reflect.DeepEqual(got[r][c], want[r][c]) {
				t.Errorf("row %d column %s: direct %#v, pgtype %#v", r, cols[c].Name, got[r][c], want[r][c])
			}
		}
	}
}

package landing

import (
	"crypto/md5"
	"encoding/binary"
	"fmt"
	"math/big"
	"math/bits"
	"strconv"
	"strings"
)

// RowHash is h(row) of docs/contracts.md §5: the first 15 hex digits (60 bits) of
// md5(key_text || '|' || row_version), where key_text is the key columns' text forms
// joined by '|'. The same value is computed in SQL by ChecksumSQL.
func RowHash(keyText string, rowVersion int64) uint64 {
	var buf [128]byte
	return rowHash(append(append(buf[:0], keyText...), '|'), rowVersion)
}

// rowHash is RowHash of a key text already in b with its '|' appended; b's spare
// capacity takes the version, so a caller's scratch buffer saves the allocations.
// The first 15 hex digits of the md5 are the top 60 bits of its first 8 bytes.
func rowHash(b []byte, rowVersion int64) uint64 {
	sum := md5.Sum(strconv.AppendInt(b, rowVersion, 10))
	return binary.BigEndian.Uint64(sum[:8]) >> 4
}

// KeyText joins the text forms of a row's key columns with '|'.
func KeyText(parts ...string) string { return strings.Join(parts, "|") }

// KeyValueText is the text form of one key column's value (docs/contracts.md §5): a
// uuid in lowercase hyphenated form (the caller passes it as that string), an integer in
// decimal, text as it is. Extract and the CDC consumer both build key_text with it.
func KeyValueText(v any) string {
	switch x := v.(type) {
	case string:
		return x
	case int64:
		return strconv.FormatInt(x, 10)
	case int32:
		return strconv.FormatInt(int64(x), 10)
	case nil:
		return ""
	default:
		return fmt.Sprint(x)
	}
}

// Checksum accumulates RowHash over a set of rows. The result does not depend on order,
// and the exact sum never overflows: it is kept in 128 bits (2^68 rows of 60-bit hashes).
type Checksum struct {
	rows    int64
	hi, lo  uint64
	scratch []byte // addParts' key text
}

// Add adds one row.
func (c *Checksum) Add(keyText string, rowVersion int64) {
	c.add(RowHash(keyText, rowVersion))
}

// addParts adds the row whose key columns' text forms are parts (KeyText(parts...)).
func (c *Checksum) addParts(parts []string, rowVersion int64) {
	b := c.scratch[:0]
	for _, p := range parts {
		b = append(append(b, p...), '|')
	}
	c.add(rowHash(b, rowVersion))
	c.scratch = b
}

func (c *Checksum) add(h uint64) {
	var carry uint64
	c.rows++
	c.lo, carry = bits.Add64(c.lo, h, 0)
	c.hi += carry
}

// Merge adds another checksum's rows.
func (c *Checksum) Merge(o *Checksum) {
	var carry uint64
	c.rows += o.rows
	c.lo, carry = bits.Add64(c.lo, o.lo, 0)
	c.hi += o.hi + carry
}

// Rows is the number of rows added.
func (c *Checksum) Rows() int64 { return c.rows }

// String is the exact sum in decimal, as manifests and dq_results store it.
func (c *Checksum) String() string {
	var sum big.Int
	sum.SetUint64(c.hi).Lsh(&sum, 64)
	return sum.Add(&sum, new(big.Int).SetUint64(c.lo)).String()
}

// Dialect is a SQL engine the checksum is computed in.
type Dialect string

// Dialects.
const (
	Postgres  Dialect = "postgres"
	DuckDB    Dialect = "duckdb"
	Snowflake Dialect = "snowflake"
)

// ChecksumSQL returns the SQL expressions for count and checksum over rows with the given
// key columns and version column, in the given dialect: `SELECT <count>, <sum> FROM ...`.
// The sum is returned as text so no client has to carry a 128-bit integer.
func ChecksumSQL(d Dialect, keyCols []string, versionCol string) (count, sum string) {
	parts := make([]string, 0, len(keyCols)+1)
	for _, k := range keyCols {
		parts = append(parts, "CAST("+k+" AS VARCHAR)")
	}
	parts = append(parts, "CAST("+versionCol+" AS VARCHAR)")
	text := strings.Join(parts, " || '|' || ")
	switch d {
	case Postgres:
		text = strings.ReplaceAll(text, "AS VARCHAR", "AS text")
		return "count(*)", "coalesce(sum(('x' || lpad(substr(md5(" + text + "), 1, 15), 16, '0'))::bit(64)::bigint), 0)::text"
	case DuckDB:
		return "count(*)", "CAST(coalesce(sum(CAST(('0x' || substr(md5(" + text + "), 1, 15)) AS UBIGINT)::HUGEINT), 0) AS VARCHAR)"
	case Snowflake:
		return "COUNT(*)", "TO_VARCHAR(COALESCE(SUM(TO_NUMBER(SUBSTR(MD5(" + text + "), 1, 15), 'XXXXXXXXXXXXXXX')), 0))"
	}
	panic("landing: unknown dialect " + string(d))
}

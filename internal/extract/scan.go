package extract

import (
	"encoding/binary"
	"encoding/hex"
	"fmt"
	"time"
	"unsafe"

	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/pgtype"

	"github.com/shopsphere/shardflow/internal/registry"
)

// scanner turns a page's raw row values into landed Go values: string (uuid canonical
// lowercase, text), int64, int32, bool, time.Time (timestamptz in UTC, date at midnight
// UTC) or nil for NULL, the values pgx's scan into pgtype's types gives. A column read
// in binary format with the type's own OID, or a text or varchar one in either format,
// is decoded directly (plan); anything else, and the values direct decoding leaves
// alone (infinities, years outside 1-9999, a length the type does not have), goes
// through pgtype's scan plan into the column's reusable destination.
type scanner struct {
	cols []registry.Column
	dst  []any
	bin  []binDecode // per column, from plan
	oid  []uint32
	fmt  []int16
}

// binDecode is how scanner decodes a column's value.
type binDecode uint8

const (
	viaPgtype binDecode = iota // pgtype's scan plan
	binUUID
	binText
	binInt8
	binInt4
	binBool
	binTimestamptz
	binDate
)

// The microseconds and days from 2000-01-01 (PostgreSQL's epoch) of years 1 to 9999,
// the range direct decoding takes; outside it pgtype decides (and its errors hold).
var (
	pgEpoch      = time.Date(2000, 1, 1, 0, 0, 0, 0, time.UTC)
	pgEpochUs    = pgEpoch.UnixMicro()
	minDirect    = time.Date(1, 1, 1, 0, 0, 0, 0, time.UTC)
	endDirect    = time.Date(10000, 1, 1, 0, 0, 0, 0, time.UTC)
	minDirectUs  = minDirect.UnixMicro() - pgEpochUs
	endDirectUs  = endDirect.UnixMicro() - pgEpochUs
	minDirectDay = (minDirect.Unix() - pgEpoch.Unix()) / 86400
	endDirectDay = (endDirect.Unix() - pgEpoch.Unix()) / 86400
)

func newScanner(cols []registry.Column) (*scanner, error) {
	s := &scanner{cols: cols, dst: make([]any, len(cols)), bin: make([]binDecode, len(cols)),
		oid: make([]uint32, len(cols)), fmt: make([]int16, len(cols))}
	for i, c := range cols {
		switch c.Type {
		case "uuid":
			s.dst[i] = new(pgtype.UUID)
		case "text":
			s.dst[i] = new(pgtype.Text)
		case "bigint":
			s.dst[i] = new(pgtype.Int8)
		case "integer":
			s.dst[i] = new(pgtype.Int4)
		case "boolean":
			s.dst[i] = new(pgtype.Bool)
		case "timestamptz":
			s.dst[i] = new(pgtype.Timestamptz)
		case "date":
			s.dst[i] = new(pgtype.Date)
		default:
			return nil, fmt.Errorf("column %s: type %q is not supported", c.Name, c.Type)
		}
	}
	return s, nil
}

// plan chooses each column's decoding from a page's field descriptions.
func (s *scanner) plan(fds []pgconn.FieldDescription) error {
	if len(fds) != len(s.cols) {
		return fmt.Errorf("%d columns in the result for %d selected", len(fds), len(s.cols))
	}
	for i, fd := range fds {
		s.oid[i], s.fmt[i], s.bin[i] = fd.DataTypeOID, fd.Format, viaPgtype
		isText := fd.DataTypeOID == pgtype.TextOID || fd.DataTypeOID == pgtype.VarcharOID
		if s.cols[i].Type == "text" && isText {
			s.bin[i] = binText // the same bytes in either format (pgx asks for text)
			continue
		}
		if fd.Format != pgtype.BinaryFormatCode {
			continue
		}
		switch t := s.cols[i].Type; {
		case t == "uuid" && fd.DataTypeOID == pgtype.UUIDOID:
			s.bin[i] = binUUID
		case t == "bigint" && fd.DataTypeOID == pgtype.Int8OID:
			s.bin[i] = binInt8
		case t == "integer" && fd.DataTypeOID == pgtype.Int4OID:
			s.bin[i] = binInt4
		case t == "boolean" && fd.DataTypeOID == pgtype.BoolOID:
			s.bin[i] = binBool
		case t == "timestamptz" && fd.DataTypeOID == pgtype.TimestamptzOID:
			s.bin[i] = binTimestamptz
		case t == "date" && fd.DataTypeOID == pgtype.DateOID:
			s.bin[i] = binDate
		}
	}
	return nil
}

// decode converts one row's raw values (as plan described them) into out (len(cols)).
// The row's text and uuid strings share one allocation.
func (s *scanner) decode(m *pgtype.Map, raw [][]byte, out []any) error {
	if len(raw) != len(s.cols) {
		return fmt.Errorf("%d values in a row for %d columns", len(raw), len(s.cols))
	}
	n := 0
	for i, b := range raw {
		switch s.bin[i] {
		case binText:
			n += len(b)
		case binUUID:
			n += 36
		}
	}
	strs := make([]byte, 0, n) // never reallocated: its strings stay valid
	for i, b := range raw {
		if b == nil {
			out[i] = nil
			continue
		}
		switch s.bin[i] {
		case binText:
			if len(b) == 0 {
				out[i] = ""
			} else {
				at := len(strs)
				strs = append(strs, b...)
				out[i] = unsafe.String(&strs[at], len(b))
			}
			continue
		case binUUID:
			if len(b) == 16 {
				at := len(strs)
				strs = appendUUID(strs, b)
				out[i] = unsafe.String(&strs[at], 36)
				continue
			}
		case binInt8:
			if len(b) == 8 {
				out[i] = int64(binary.BigEndian.Uint64(b))
				continue
			}
		case binInt4:
			if len(b) == 4 {
				out[i] = int32(binary.BigEndian.Uint32(b))
				continue
			}
		case binBool:
			if len(b) == 1 {
				out[i] = b[0] == 1
				continue
			}
		case binTimestamptz:
			if len(b) == 8 {
				if us := int64(binary.BigEndian.Uint64(b)); us >= minDirectUs && us < endDirectUs {
					out[i] = time.UnixMicro(pgEpochUs + us).UTC()
					continue
				}
			}
		case binDate:
			if len(b) == 4 {
				if d := int64(int32(binary.BigEndian.Uint32(b))); d >= minDirectDay && d < endDirectDay {
					out[i] = time.Date(2000, 1, int(1+d), 0, 0, 0, 0, time.UTC)
					continue
				}
			}
		}
		if err := m.Scan(s.oid[i], s.fmt[i], b, s.dst[i]); err != nil {
			return fmt.Errorf("column %s: %w", s.cols[i].Name, err)
		}
		out[i] = s.value(i)
	}
	return nil
}

// value is column i's scanned destination as a landed value.
func (s *scanner) value(i int) any {
	switch v := s.dst[i].(type) {
	case *pgtype.UUID:
		if v.Valid {
			return uuidString(v.Bytes)
		}
	case *pgtype.Text:
		if v.Valid {
			return v.String
		}
	case *pgtype.Int8:
		if v.Valid {
			return v.Int64
		}
	case *pgtype.Int4:
		if v.Valid {
			return v.Int32
		}
	case *pgtype.Bool:
		if v.Valid {
			return v.Bool
		}
	case *pgtype.Timestamptz:
		if v.Valid {
			return v.Time.UTC()
		}
	case *pgtype.Date:
		if v.Valid {
			return time.Date(v.Time.Year(), v.Time.Month(), v.Time.Day(), 0, 0, 0, 0, time.UTC)
		}
	}
	return nil
}

// uuidString is the canonical lowercase form, as PostgreSQL's uuid::text writes it.
func uuidString(b [16]byte) string {
	return string(appendUUID(make([]byte, 0, 36), b[:]))
}

// appendUUID appends the canonical form of the 16 bytes b to dst.
func appendUUID(dst, b []byte) []byte {
	var buf [36]byte
	hex.Encode(buf[0:8], b[0:4])
	buf[8] = '-'
	hex.Encode(buf[9:13], b[4:6])
	buf[13] = '-'
	hex.Encode(buf[14:18], b[6:8])
	buf[18] = '-'
	hex.Encode(buf[19:23], b[8:10])
	buf[23] = '-'
	hex.Encode(buf[24:], b[10:16])
	return append(dst, buf[:]...)
}

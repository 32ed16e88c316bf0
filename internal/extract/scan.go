package extract

import (
	"encoding/hex"
	"fmt"
	"time"

	"github.com/jackc/pgx/v5/pgtype"

	"github.com/shopsphere/shardflow/internal/registry"
)

// scanner holds one reusable scan destination per selected column and turns a scanned
// row into landed Go values: string (uuid canonical lowercase, text), int64, int32,
// bool, time.Time (timestamptz in UTC, date at midnight UTC) or nil for NULL.
type scanner struct {
	cols []registry.Column
	dst  []any
}

func newScanner(cols []registry.Column) (*scanner, error) {
	s := &scanner{cols: cols, dst: make([]any, len(cols))}
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

// values converts the scanned destinations into out (len(cols)).
func (s *scanner) values(out []any) {
	for i, d := range s.dst {
		switch v := d.(type) {
		case *pgtype.UUID:
			if v.Valid {
				out[i] = uuidString(v.Bytes)
			} else {
				out[i] = nil
			}
		case *pgtype.Text:
			if v.Valid {
				out[i] = v.String
			} else {
				out[i] = nil
			}
		case *pgtype.Int8:
			if v.Valid {
				out[i] = v.Int64
			} else {
				out[i] = nil
			}
		case *pgtype.Int4:
			if v.Valid {
				out[i] = v.Int32
			} else {
				out[i] = nil
			}
		case *pgtype.Bool:
			if v.Valid {
				out[i] = v.Bool
			} else {
				out[i] = nil
			}
		case *pgtype.Timestamptz:
			if v.Valid {
				out[i] = v.Time.UTC()
			} else {
				out[i] = nil
			}
		case *pgtype.Date:
			if v.Valid {
				out[i] = time.Date(v.Time.Year(), v.Time.Month(), v.Time.Day(), 0, 0, 0, 0, time.UTC)
			} else {
				out[i] = nil
			}
		}
	}
}

// uuidString is the canonical lowercase form, as PostgreSQL's uuid::text writes it.
func uuidString(b [16]byte) string {
	var buf [36]byte
	hex.Encode(buf[0:8], b[0:4])
	buf[8] = '-'
	hex.Encode(buf[9:13], b[4:6])
	buf[13] = '-'
	hex.Encode(buf[14:18], b[6:8])
	buf[18] = '-'
	hex.Encode(buf[19:23], b[8:10])
	buf[23] = '-'
	hex.Encode(buf[24:], b[10:])
	return string(buf[:])
}

package cdc

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"strconv"
	"time"
)

// Event is one decoded Debezium change event (the JSON envelope the connector's
// JsonConverter writes with schemas.enable=false, docs/cdc.md "Events").
type Event struct {
	Op       string                     // c, u, d or r (snapshot read)
	Before   map[string]json.RawMessage // the old row (d; u with REPLICA IDENTITY FULL)
	After    map[string]json.RawMessage // the new row (c, u, r)
	LSN      int64                      // source.lsn: the change's position in the shard's WAL
	TxID     int64                      // source.txId
	CommitTS time.Time                  // source.ts_us (else ts_ms): the transaction's commit time; the read time for r
	Table    string                     // source.table
}

// Row is the row the event lands: After, or Before for a delete.
func (e *Event) Row() map[string]json.RawMessage {
	if e.Op == "d" {
		return e.Before
	}
	return e.After
}

// ErrTombstone is returned for a record with no value (a Kafka tombstone). The
// connectors are rendered with tombstones.on.delete=false, so none is expected; the
// consumer skips them.
var ErrTombstone = errors.New("tombstone record")

type envelope struct {
	Op     string                     `json:"op"`
	Before map[string]json.RawMessage `json:"before"`
	After  map[string]json.RawMessage `json:"after"`
	Source struct {
		LSN   *int64 `json:"lsn"`
		TxID  *int64 `json:"txId"`
		TsMs  *int64 `json:"ts_ms"`
		TsUs  *int64 `json:"ts_us"`
		Table string `json:"table"`
	} `json:"source"`
	// schemas.enable=true wraps the envelope in {"schema":…,"payload":…}
	Payload json.RawMessage `json:"payload"`
}

// DecodeEvent decodes a record value. Envelopes with an inline schema
// ({"schema":…,"payload":…}) are accepted too, so a worker left on schemas.enable=true
// does not stop the consumer.
func DecodeEvent(value []byte) (*Event, error) {
	if len(bytes.TrimSpace(value)) == 0 || bytes.Equal(bytes.TrimSpace(value), []byte("null")) {
		return nil, ErrTombstone
	}
	var env envelope
	if err := json.Unmarshal(value, &env); err != nil {
		return nil, fmt.Errorf("decode change event: %w", err)
	}
	if env.Op == "" && len(env.Payload) > 0 {
		env = envelope{}
		var wrapped struct {
			Payload json.RawMessage `json:"payload"`
		}
		if err := json.Unmarshal(value, &wrapped); err != nil {
			return nil, fmt.Errorf("decode change event: %w", err)
		}
		if err := json.Unmarshal(wrapped.Payload, &env); err != nil {
			return nil, fmt.Errorf("decode change event payload: %w", err)
		}
	}
	e := &Event{Op: env.Op, Before: env.Before, After: env.After, Table: env.Source.Table}
	switch e.Op {
	case "c", "u", "r":
		if e.After == nil {
			return nil, fmt.Errorf("decode change event: op %s without after", e.Op)
		}
	case "d":
		if e.Before == nil {
			return nil, fmt.Errorf("decode change event: delete without before (is REPLICA IDENTITY FULL set?)")
		}
	default:
		return nil, fmt.Errorf("decode change event: op %q is not c, u, d or r", e.Op)
	}
	if env.Source.LSN == nil || env.Source.TxID == nil {
		if e.Op != "r" {
			return nil, fmt.Errorf("decode change event: source.lsn or source.txId missing")
		}
	}
	if env.Source.LSN != nil {
		e.LSN = *env.Source.LSN
	}
	if env.Source.TxID != nil {
		e.TxID = *env.Source.TxID
	}
	switch {
	case env.Source.TsUs != nil:
		e.CommitTS = time.UnixMicro(*env.Source.TsUs).UTC()
	case env.Source.TsMs != nil:
		e.CommitTS = time.UnixMilli(*env.Source.TsMs).UTC()
	default:
		return nil, fmt.Errorf("decode change event: source.ts_ms missing")
	}
	return e, nil
}

// value converts one JSON field of a row to the Go value the landed file holds for the
// shards.yaml type: string (uuid, text), int64 (bigint), int32 (integer), bool,
// time.Time (timestamptz: Debezium's ISO-8601 ZonedTimestamp; date: days since epoch),
// or nil. Its errors never contain the value (it may be a PCI column's).
func value(raw json.RawMessage, typ string) (any, error) {
	if len(raw) == 0 || string(raw) == "null" {
		return nil, nil
	}
	switch typ {
	case "uuid", "text":
		var s string
		if err := json.Unmarshal(raw, &s); err != nil {
			return nil, errors.New("want a string")
		}
		return s, nil
	case "bigint":
		n, err := strconv.ParseInt(string(raw), 10, 64)
		if err != nil {
			return nil, errors.New("want a bigint")
		}
		return n, nil
	case "integer":
		n, err := strconv.ParseInt(string(raw), 10, 32)
		if err != nil {
			return nil, errors.New("want an integer")
		}
		return int32(n), nil
	case "boolean":
		switch string(raw) {
		case "true":
			return true, nil
		case "false":
			return false, nil
		}
		return nil, fmt.Errorf("want a boolean")
	case "timestamptz":
		var s string
		if err := json.Unmarshal(raw, &s); err != nil {
			return nil, errors.New("want an ISO-8601 timestamp")
		}
		t, err := time.Parse(time.RFC3339Nano, s)
		if err != nil {
			return nil, errors.New("want an ISO-8601 timestamp")
		}
		return t.UTC(), nil
	case "date":
		n, err := strconv.ParseInt(string(raw), 10, 32)
		if err != nil {
			return nil, errors.New("want days since epoch")
		}
		return time.Unix(n*86400, 0).UTC(), nil
	}
	return nil, fmt.Errorf("type %s is not supported", typ)
}

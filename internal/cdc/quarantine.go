package cdc

import (
	"context"
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/shopsphere/shardflow/internal/exitcode"
	"github.com/shopsphere/shardflow/internal/objstore"
)

// A poison event is a change event that can never be landed as it is: it does not
// decode, it carries a column shards.yaml does not declare or declares drop, or its
// row's bucket is wrong. Retrying cannot help, and skipping it silently would lose a
// change, so its partition (one table of one shard) stops at it: the records before it
// are landed and committed, the event is recorded in the object store as a quarantine
// naming its topic, partition and offset (never its values), and nothing after it is
// consumed until an operator releases it (`shardctl quarantine`). Every other
// partition, and so every other shard, goes on, and the run succeeds: loading and dbt
// are not held back for the fleet. The exporter reports each quarantine
// (shardflow_cdc_quarantined), and its alert names it.

// QuarantinePrefix is where quarantines are kept in the object store: one object per
// stopped partition, and the record of every event skipped by an operator's decision.
const QuarantinePrefix = "quarantine/cdc/"

const (
	skippedPrefix = QuarantinePrefix + "skipped/"
	retriedPrefix = QuarantinePrefix + "retried/"
)

// PoisonError is the failure of one record that retrying cannot fix.
type PoisonError struct {
	Topic     string
	Partition int32
	Offset    int64
	Shard     string
	Table     string
	Err       error
}

func (e *PoisonError) Error() string {
	return fmt.Sprintf("shard %s table %s partition %d offset %d: %v", e.Shard, e.Table, e.Partition, e.Offset, e.Err)
}

func (e *PoisonError) Unwrap() error { return e.Err }

// poison reports whether err, the failure of one record, is a poison event: any
// failure but one that may pass when retried (75) or a usage error (the consumer's own
// configuration, not the record).
func poison(err error) bool {
	code := exitcode.Of(err)
	return code != exitcode.Retryable && code != exitcode.Usage
}

// Quarantine is a stopped partition's record.
type Quarantine struct {
	Topic     string `json:"topic"`
	Partition int32  `json:"partition"`
	Offset    int64  `json:"offset"`
	Shard     string `json:"shard"`
	Table     string `json:"table"`
	// Reason is the error, naming columns and offsets, never a value.
	Reason      string    `json:"reason"`
	ExitCode    int       `json:"exit_code"`
	At          time.Time `json:"quarantined_at"`
	CodeVersion string    `json:"code_version"`
	// Decision is set on the record of a skipped event: what an operator decided.
	Decision *Decision `json:"decision,omitempty"`
}

// Decision is an operator's release of a quarantine.
type Decision struct {
	// Action is "retry" (consume the event again, after a fix: a column declared, the
	// connector corrected, a new consumer version) or "skip" (never land this one event;
	// the records after it are consumed).
	Action string    `json:"action"`
	Reason string    `json:"reason"`
	By     string    `json:"by"`
	At     time.Time `json:"at"`
}

// Release actions.
const (
	Retry = "retry"
	Skip  = "skip"
)

// QuarantineKey is the object of a stopped partition.
func QuarantineKey(topic string, partition int32) string {
	return fmt.Sprintf("%s%s/p%d.json", QuarantinePrefix, topic, partition)
}

func skippedKey(topic string, partition int32, offset int64) string {
	return fmt.Sprintf("%s%s/p%d/%020d.json", skippedPrefix, topic, partition, offset)
}

// WriteQuarantine records q, the stop of its partition at a poison event.
func WriteQuarantine(ctx context.Context, store objstore.Store, q Quarantine) error {
	return objstore.PutJSON(ctx, store, QuarantineKey(q.Topic, q.Partition), q)
}

func getQuarantine(ctx context.Context, store objstore.Store, key string) (*Quarantine, error) {
	var q Quarantine
	if ok, err := objstore.GetJSON(ctx, store, key, &q); err != nil || !ok {
		return nil, err
	}
	return &q, nil
}

// listQuarantines reads the records under prefix whose keys keep says are records.
func listQuarantines(ctx context.Context, store objstore.Store, prefix string, keep func(key string) bool) ([]Quarantine, error) {
	keys, err := store.List(ctx, prefix)
	if err != nil {
		return nil, objstore.Classify(fmt.Errorf("list %s: %w", prefix, err))
	}
	var out []Quarantine
	for _, k := range keys {
		if !keep(k) {
			continue
		}
		q, err := getQuarantine(ctx, store, k)
		if err != nil {
			return nil, err
		}
		if q != nil {
			out = append(out, *q)
		}
	}
	return out, nil
}

// Quarantines lists the stopped partitions, by topic and partition.
func Quarantines(ctx context.Context, store objstore.Store) ([]Quarantine, error) {
	return listQuarantines(ctx, store, QuarantinePrefix, func(k string) bool {
		// quarantine/cdc/<topic>/p<partition>.json; the decisions live deeper
		parts := strings.Split(strings.TrimPrefix(k, QuarantinePrefix), "/")
		return len(parts) == 2 && strings.HasPrefix(parts[1], "p") && strings.HasSuffix(parts[1], ".json")
	})
}

// Skipped lists the events skipped by an operator's decision, with the decision.
func Skipped(ctx context.Context, store objstore.Store) ([]Quarantine, error) {
	return listQuarantines(ctx, store, skippedPrefix, func(string) bool { return true })
}

func retriedKey(topic string, partition int32, offset int64, at time.Time) string {
	return fmt.Sprintf("%s%s/p%d/%020d-%d.json", retriedPrefix, topic, partition, offset, at.UnixNano())
}

// skippedOffsets are the offsets of partition p of topic that decisions skipped.
func skippedOffsets(ctx context.Context, store objstore.Store, topic string, p int32) (map[int64]bool, error) {
	prefix := fmt.Sprintf("%s%s/p%d/", skippedPrefix, topic, p)
	keys, err := store.List(ctx, prefix)
	if err != nil {
		return nil, objstore.Classify(fmt.Errorf("list %s: %w", prefix, err))
	}
	out := map[int64]bool{}
	for _, k := range keys {
		n, err := strconv.ParseInt(strings.TrimSuffix(strings.TrimPrefix(k, prefix), ".json"), 10, 64)
		if err == nil {
			out[n] = true
		}
	}
	return out, nil
}

// Release ends the quarantine of partition p of topic with an operator's decision. The
// event must be the one quarantined there (offset), so a release decided on one event
// never applies to another. Either decision is recorded under quarantine/cdc/ before
// the quarantine is lifted: skip for good (the consumer drops exactly that offset, on
// every replica and every later run), retry as an audit record (an event still poison
// is quarantined again).
func Release(ctx context.Context, store objstore.Store, topic string, p int32, offset int64, d Decision) (*Quarantine, error) {
	if d.Action != Retry && d.Action != Skip {
		return nil, exitcode.Errorf(exitcode.Usage, "release: action %q is not retry or skip", d.Action)
	}
	if strings.TrimSpace(d.Reason) == "" || strings.TrimSpace(d.By) == "" {
		return nil, exitcode.Errorf(exitcode.Usage, "release: a decision needs a reason and who decided it")
	}
	key := QuarantineKey(topic, p)
	q, err := getQuarantine(ctx, store, key)
	if err != nil {
		return nil, err
	}
	if q == nil {
		return nil, exitcode.Errorf(exitcode.Usage, "release: partition %d of %s is not quarantined", p, topic)
	}
	if q.Offset != offset {
		return nil, exitcode.Errorf(exitcode.Usage, "release: partition %d of %s is quarantined at offset %d, not %d", p, topic, q.Offset, offset)
	}
	if d.At.IsZero() {
		d.At = time.Now().UTC()
	}
	q.Decision = &d
	record := retriedKey(topic, p, offset, d.At)
	if d.Action == Skip {
		record = skippedKey(topic, p, offset)
	}
	if err := objstore.PutJSON(ctx, store, record, q); err != nil {
		return nil, fmt.Errorf("release: record the decision on %s/%d offset %d: %w", topic, p, offset, err)
	}
	if err := store.Delete(ctx, key); err != nil {
		return nil, objstore.Classify(fmt.Errorf("release: delete %s: %w", key, err))
	}
	return q, nil
}

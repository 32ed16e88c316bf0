package cdc

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"time"

	"github.com/shopsphere/shardflow/internal/exitcode"
	"github.com/shopsphere/shardflow/internal/landing"
	"github.com/shopsphere/shardflow/internal/objstore"
)

// Replicas of `tokenize cdc` share the shards' partitions through the consumer group,
// and a partition moves between them on every rebalance: a replica killed, added or
// stalled past its session. A member that lost a partition may not know it yet (a
// zombie: paused, partitioned, slow) and still land the file it was cutting, while the
// new owner reads the same records from the committed offset and cuts its own file. Its
// offset commit fails (the group's generation moved on), but files are stored before
// commits, so the commit cannot be what keeps files exact.
//
// A claim is. Before a file's data is stored, its writer creates the claim of the
// file's first offset with objstore.Create, the store's compare-and-set: the claim
// records the file's last offset, and of all the writers that ever cut a file starting
// there exactly one creates it. Every other writer takes the claimed range: it lands
// (or adopts, when the manifest is there) exactly [first, claimed last], waiting for
// more records or leaving the rest of its buffer for the next file. Every file then
// starts where the one before it ended, whoever cut it, so the files of a partition
// never overlap and never leave a gap. Two writers of one claimed range write the same
// bytes (a file's bytes depend only on its records, decisions/0019), so a zombie that
// stores the data again changes nothing.

// Claim is the offset range a partition's file starting at First was cut for.
type Claim struct {
	Topic       string    `json:"topic"`
	Partition   int32     `json:"partition"`
	First       int64     `json:"first"`
	Last        int64     `json:"last"`
	DataKey     string    `json:"data_key"`
	At          time.Time `json:"claimed_at"`
	CodeVersion string    `json:"code_version,omitempty"`
}

// ClaimKey is the key of the claim of the file of topic's partition starting at first.
func ClaimKey(topic string, partition int32, first int64) string {
	return fmt.Sprintf("%s%s/p%d/%020d.json", landing.ClaimPrefix, topic, partition, first)
}

// claim creates the claim of j's range (created), or returns the claim another writer
// made for j's first offset, which may end elsewhere.
func (c *Consumer) claim(ctx context.Context, j *fileJob, dataKey string) (cl *Claim, created bool, err error) {
	want := Claim{Topic: j.Topic, Partition: j.Partition, First: j.First, Last: j.Last, DataKey: dataKey,
		At: c.Now().UTC(), CodeVersion: c.CodeVersion}
	b, err := json.MarshalIndent(want, "", "  ")
	if err != nil {
		return nil, false, err
	}
	key := ClaimKey(j.Topic, j.Partition, j.First)
	err = c.Store.Create(ctx, key, bytes.NewReader(append(b, '\n')))
	if err == nil {
		return &want, true, nil
	}
	if !errors.Is(err, objstore.ErrExists) {
		return nil, false, objstore.Classify(fmt.Errorf("%s: claim: %w", j, err))
	}
	if cl, err = c.getClaim(ctx, j.Topic, j.Partition, j.First); err == nil && cl == nil {
		err = exitcode.Errorf(exitcode.Retryable, "%s: claim %s exists but cannot be read", j, key)
	}
	return cl, false, err
}

// getClaim reads the claim of the file starting at first, nil when there is none.
func (c *Consumer) getClaim(ctx context.Context, topic string, p int32, first int64) (*Claim, error) {
	var cl Claim
	ok, err := objstore.GetJSON(ctx, c.Store, ClaimKey(topic, p, first), &cl)
	if err != nil || !ok {
		return nil, err
	}
	if cl.First != first || cl.Last < first || cl.Partition != p || cl.Topic != topic {
		return nil, exitcode.Errorf(exitcode.Permanent, "claim %s names %s/%d %d-%d", ClaimKey(topic, p, first), cl.Topic, cl.Partition, cl.First, cl.Last)
	}
	return &cl, nil
}

// claimLanded reports whether the claimed file's manifest is stored (the file is landed).
func (c *Consumer) claimLanded(ctx context.Context, cl *Claim) (bool, error) {
	rc, err := c.Store.Get(ctx, landing.ManifestKey(cl.DataKey))
	if err == nil {
		rc.Close()
		return true, nil
	}
	if errors.Is(err, fs.ErrNotExist) {
		return false, nil
	}
	return false, objstore.Classify(err)
}

// ClaimedError is land's answer when another writer claimed the file's first offset:
// for another range (the caller re-cuts its records to Claim's), or for the same one,
// already landed (Landed: the caller adopts it).
type ClaimedError struct {
	Claim  *Claim
	Landed bool
}

func (e *ClaimedError) Error() string {
	if e.Landed {
		return fmt.Sprintf("file %s/%d %d-%d landed by another writer", e.Claim.Topic, e.Claim.Partition, e.Claim.First, e.Claim.Last)
	}
	return fmt.Sprintf("file %s/%d from %d claimed up to %d by another writer", e.Claim.Topic, e.Claim.Partition, e.Claim.First, e.Claim.Last)
}

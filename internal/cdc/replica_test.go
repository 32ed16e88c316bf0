package cdc_test

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/shopsphere/shardflow/internal/cdc"
	"github.com/shopsphere/shardflow/internal/cdc/cdctest"
	"github.com/shopsphere/shardflow/internal/landing"
)

// TestZombieReplica attacks horizontal `tokenize cdc` where a commit cannot help: a
// replica that lost its partition without knowing it. Replica A stalls after storing a
// file's data and before its manifest (a GC pause, a partitioned node) longer than the
// group's rebalance timeout, so the group gives the partition to replica B, which reads
// from the committed offset with more records behind it and would cut its own, longer
// file. Then A wakes up and finishes its file. Without the claim (claim.go) B deletes
// A's data file as an orphan and lands 0-59 while A's manifest of 0-29 appears: two
// files hold records 0-29 and one manifest has no data. With it, B lands exactly A's
// claimed range and goes on from there: the files tile the offsets, every record lands
// once, and every manifest's sha256 is its data file's.
func TestZombieReplica(t *testing.T) {
	stack := cdctest.Start(t)
	reg := loadRegistry(t)
	lake := t.TempDir()
	topic := "shardflow.s01.public.payments"
	cust := customerOn(t, reg, "s01", 0)
	events := func(from, to int) [][]byte {
		var vals [][]byte
		for i := from; i < to; i++ {
			vals = append(vals, paymentEvent(reg, "c", i, cust, 1, int64(100+i)))
		}
		return vals
	}
	produce(t, stack.Brokers, topic, events(0, 30)...)

	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	// a short rebalance timeout: a member that does not rejoin in time is dropped
	opts := []kgo.Opt{kgo.RebalanceTimeout(3 * time.Second), kgo.SessionTimeout(6 * time.Second), kgo.HeartbeatInterval(500 * time.Millisecond)}
	newReplica := func() *cdc.Consumer {
		c := newConsumer(t, reg, stack.Brokers, lake)
		c.Group = "test-zombie"
		c.FileRecords = 1000 // files are cut by the flush interval only: where depends on timing
		c.Opts = opts
		return c
	}

	stalled, wake := make(chan string, 1), make(chan struct{})
	var once sync.Once
	a := newReplica()
	a.Failpoint = func(step, key string) error {
		if step == "data" {
			once.Do(func() { stalled <- key; <-wake })
		}
		return nil
	}
	aCtx, stopA := context.WithCancel(ctx)
	aDone := make(chan error, 1)
	go func() { _, err := a.Run(aCtx, false); aDone <- err }()
	var aKey string
	select {
	case aKey = <-stalled:
	case <-ctx.Done():
		t.Fatal("replica A never stored a data file")
	}
	if !strings.Contains(aKey, "__00000000000000000000-00000000000000000029.parquet") {
		t.Fatalf("A's file %s, want offsets 0-29", aKey)
	}
	t.Logf("replica A stalled after storing %s, before its manifest", filepath.Base(aKey))

	// B joins; A does not rejoin within the rebalance timeout, so B owns the partition
	// and reads 0-59 from the committed offset 0.
	produce(t, stack.Brokers, topic, events(30, 60)...)
	b := newReplica()
	bCtx, stopB := context.WithCancel(ctx)
	bDone := make(chan error, 1)
	go func() { _, err := b.Run(bCtx, false); bDone <- err }()
	waitFiles(t, ctx, lake, 59)
	t.Logf("replica B landed %s while A was stalled", ranges(landedFiles(t, lake, "payments")))

	close(wake) // A finishes its file: its manifest, then a commit the group refuses
	time.Sleep(3 * time.Second)
	produce(t, stack.Brokers, topic, events(60, 70)...)
	waitFiles(t, ctx, lake, 69)
	stopA()
	stopB()
	for _, done := range []chan error{aDone, bDone} {
		if err := <-done; err != nil && !errors.Is(err, context.Canceled) {
			t.Logf("replica ended with %v", err)
		}
	}

	files := landedFiles(t, lake, "payments")
	next, rows := int64(0), int64(0)
	for _, f := range files {
		if f.first != next {
			t.Fatalf("files %s: one starts at %d, want %d (overlap or gap)", ranges(files), f.first, next)
		}
		next, rows = f.last+1, rows+f.rows
		checkDataSHA(t, lake, f.key)
	}
	if next != 70 || rows != 70 {
		t.Fatalf("files %s hold %d rows up to offset %d, want 70 rows, offsets 0-69 once each", ranges(files), rows, next-1)
	}
	t.Logf("files %s: every record once, each manifest's sha256 its data's", ranges(files))
}

// waitFiles waits until the payments files reach offset last.
func waitFiles(t *testing.T, ctx context.Context, lake string, last int64) {
	t.Helper()
	for {
		fs := landedFiles(t, lake, "payments")
		if len(fs) > 0 && fs[len(fs)-1].last >= last {
			return
		}
		if ctx.Err() != nil {
			t.Fatalf("files %s never reached offset %d", ranges(fs), last)
		}
		time.Sleep(200 * time.Millisecond)
	}
}

// checkDataSHA fails unless the data file of key is there and is what its manifest says.
func checkDataSHA(t *testing.T, lake, key string) {
	t.Helper()
	mb, err := os.ReadFile(filepath.Join(lake, landing.ManifestKey(key)))
	if err != nil {
		t.Fatal(err)
	}
	m, err := landing.ParseManifest(mb)
	if err != nil {
		t.Fatal(err)
	}
	data, err := os.ReadFile(filepath.Join(lake, key))
	if err != nil {
		t.Fatalf("manifest %s without its data file: %v", filepath.Base(landing.ManifestKey(key)), err)
	}
	if sum := sha256.Sum256(data); hex.EncodeToString(sum[:]) != m.DataSHA256 {
		t.Fatalf("data file %s is not the one its manifest names (sha256)", filepath.Base(key))
	}
}

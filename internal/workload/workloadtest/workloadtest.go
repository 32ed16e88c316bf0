// Package workloadtest runs order traffic in the background of a test, while the test
// kills, moves or consumes around it.
package workloadtest

import (
	"context"
	"errors"
	"testing"

	"github.com/shopsphere/shardflow/internal/workload"
)

// Traffic is workload.Run running in the background.
type Traffic struct {
	done  chan struct{}
	stats *workload.Stats
}

// Start runs workload.Run(ctx, cfg) in the background until ctx ends (the test cancels
// it) or cfg's own end. An error other than ctx's cancellation fails t.
func Start(ctx context.Context, t testing.TB, cfg workload.Config) *Traffic {
	tr := &Traffic{done: make(chan struct{})}
	go func() {
		defer close(tr.done)
		st, err := workload.Run(ctx, cfg)
		if err != nil && !errors.Is(err, context.Canceled) {
			t.Errorf("workload: %v", err)
		}
		tr.stats = st
	}()
	return tr
}

// Wait waits until the traffic has stopped and returns what it did.
func (tr *Traffic) Wait() *workload.Stats {
	<-tr.done
	return tr.stats
}

package cdc

import (
	"testing"
	"time"

	"github.com/shopsphere/shardflow/internal/exitcode"
	"github.com/shopsphere/shardflow/internal/landing"
	"github.com/shopsphere/shardflow/internal/objstore/dir"
	"github.com/shopsphere/shardflow/internal/registry"
)

// TestConfigured: Run's defaults go on a copy; the caller's Consumer is not changed,
// and one without its seams is a usage error.
func TestConfigured(t *testing.T) {
	if _, err := (&Consumer{}).configured(); exitcode.Of(err) != exitcode.Usage {
		t.Fatalf("no seams: %v (exit %d), want exit 2", err, exitcode.Of(err))
	}
	c := &Consumer{Registry: &registry.Registry{}, Store: dir.Store{Root: t.TempDir()}, NewWriter: landing.OpenParquet}
	cfg, err := c.configured()
	if err != nil {
		t.Fatal(err)
	}
	if cfg.Group != DefaultGroup || cfg.FileRecords != 10000 || cfg.FlushInterval != 30*time.Second || cfg.Now == nil || cfg.Log == nil {
		t.Errorf("defaults: group %q, file records %d, flush interval %s, now set %v, log set %v",
			cfg.Group, cfg.FileRecords, cfg.FlushInterval, cfg.Now != nil, cfg.Log != nil)
	}
	if c.Group != "" || c.FileRecords != 0 || c.FlushInterval != 0 || c.Now != nil || c.Log != nil {
		t.Error("configured changed the caller's Consumer")
	}
}

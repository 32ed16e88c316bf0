package shardctl

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"path/filepath"

	"github.com/shopsphere/shardflow/internal/command"
	"github.com/shopsphere/shardflow/internal/exitcode"
	"github.com/shopsphere/shardflow/internal/registry"
)

func init() {
	register(Command{
		Name:    "init",
		Summary: "write a shards.yaml derived from another (N shards, shorter windows)",
		Usage:   "[--shards N] [--buckets 4096] [--window D] [--safety-lag D] [--from FILE] [--out FILE]",
		Help: `Writes a shards.yaml derived from the registry given by --from (default:
$SHARDFLOW_REGISTRY or ./shards.yaml), for local fleets, demos and tests.

With --shards N, the shards are replaced by N shards, s00 ... s<N-1>, each owning an
even, contiguous share of the buckets, with no moves (epoch 0); each shard's DSNs are
referenced as SHARDFLOW_<ID>_EXTRACT_DSN and SHARDFLOW_<ID>_REPLICATION_DSN (Kubernetes
secret shard-<id>). Without it, the base's shards and moves are kept.
--window and --safety-lag replace extract.window and extract.safety_lag, so that a
demo's windows close within a minute of its traffic. Everything else (tables and their
PCI policies, SLAs, tokenizer, environments, comments) is copied.

The output is validated before it is written:

  shardctl init --shards 16 --out var/shards-16.yaml
  SHARDFLOW_REGISTRY=var/shards-16.yaml shardctl fleet up
  shardctl init --window 1m --safety-lag 5s --out var/demo/shards.yaml

It is not how a production fleet grows: there, shards are added by moves (docs/shards-yaml.md).`,
		Run: runInit,
	})
}

func runInit(_ context.Context, env Env, args []string) error {
	c := commands["init"]
	fs := newFlags(c, env)
	n := fs.Int("shards", 0, "number of shards (1-1000; default: keep the base's shards and moves)")
	buckets := fs.Int("buckets", 0, "number of virtual buckets, with --shards (default: the base registry's, 4096)")
	window := fs.Duration("window", 0, "extract.window (default: the base's)")
	lag := fs.Duration("safety-lag", 0, "extract.safety_lag (default: the base's)")
	from := fs.String("from", env.Registry, "registry to copy tables and settings from")
	out := fs.String("out", "", "file to write (default: stdout)")
	if err := command.Parse(fs, args); err != nil {
		return err
	}
	if err := noArgs(fs, "init"); err != nil {
		return err
	}
	base, err := os.ReadFile(*from)
	if err != nil {
		return exitcode.Wrap(exitcode.Usage, fmt.Errorf("init: read base registry: %w", err))
	}
	if *n == 0 && *buckets != 0 {
		return exitcode.Errorf(exitcode.Usage, "init: --buckets needs --shards (the base's shards own its buckets)")
	}
	text, err := registry.Derive(base, registry.DeriveOptions{Shards: *n, Buckets: *buckets, Window: *window, SafetyLag: *lag})
	if err != nil {
		return exitcode.Wrap(exitcode.Usage, fmt.Errorf("init: %w", err))
	}
	if *out == "" {
		_, err = env.Stdout.Write(text)
		return err
	}
	if dir := filepath.Dir(*out); dir != "." {
		if err := os.MkdirAll(dir, 0o755); err != nil {
			return fmt.Errorf("init: %w", err)
		}
	}
	if err := os.WriteFile(*out, text, 0o644); err != nil {
		return fmt.Errorf("init: %w", err)
	}
	r, err := registry.Check(bytes.NewReader(text))
	if err != nil {
		return err
	}
	fmt.Fprintf(env.Stderr, "wrote %s: %d shards, %d moves, window %s, safety lag %s\n",
		*out, len(r.Shards), len(r.Moves), r.Extract.Window.Duration, r.Extract.SafetyLag.Duration)
	return nil
}

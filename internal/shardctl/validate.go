package shardctl

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"slices"

	"github.com/shopsphere/shardflow/internal/command"
	"github.com/shopsphere/shardflow/internal/exitcode"
	"github.com/shopsphere/shardflow/internal/registry"
)

func init() {
	register(Command{
		Name:    "validate",
		Summary: "check shards.yaml and print every problem with its field path",
		Usage:   "[FILE]",
		Help: `Parses and validates shards.yaml (default: $SHARDFLOW_REGISTRY or ./shards.yaml) and
prints every problem at once, each with its field path and line: unknown keys, plaintext
secrets, duplicate ids, bucket ranges that overlap or leave a bucket unowned at any
epoch, moves inconsistent with shard states, tables without a key or watermark.
Exits 0 when the file is valid, 2 when it is not.`,
		Run: runValidate,
	})
}

func runValidate(_ context.Context, env Env, args []string) error {
	c := commands["validate"]
	fs := newFlags(c, env)
	if err := command.Parse(fs, args); err != nil {
		return err
	}
	path := env.Registry
	if fs.NArg() > 0 {
		path = fs.Arg(0)
	}
	r, err := registry.Load(path)
	if err != nil {
		var errs registry.Errors
		if errors.As(err, &errs) {
			fmt.Fprintf(env.Stdout, "%s: %d problem(s)\n", path, len(errs))
			for _, e := range errs {
				fmt.Fprintf(env.Stdout, "  %s\n", e)
			}
			return exitcode.Errorf(exitcode.Usage, "%s is not valid", path)
		}
		return exitcode.Wrap(exitcode.Usage, err)
	}
	fmt.Fprintf(env.Stdout, "%s: valid: %d shards, %d buckets, epoch %d, %d tables, environments %v\n",
		path, len(r.Shards), r.Routing.Buckets, r.CurrentEpoch(), len(r.Tables), envNames(r))
	return nil
}

func envNames(r *registry.Registry) []string {
	return slices.Sorted(maps.Keys(r.Environments))
}

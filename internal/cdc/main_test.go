package cdc_test

import (
	"context"
	"fmt"
	"os"
	"os/signal"
	"strings"
	"syscall"
	"testing"

	"github.com/shopsphere/shardflow/internal/cdc"
	"github.com/shopsphere/shardflow/internal/exitcode"
	"github.com/shopsphere/shardflow/internal/landing"
	"github.com/shopsphere/shardflow/internal/objstore"
	"github.com/shopsphere/shardflow/internal/objstore/dir"
	"github.com/shopsphere/shardflow/internal/registry"
)

// childEnv makes the test binary run `tokenize cdc` instead of the tests: the
// end-to-end test starts the consumer as a process of its own so it can kill -9 it.
const childEnv = "SHARDFLOW_CDC_TEST_CHILD"

func TestMain(m *testing.M) {
	if args, ok := os.LookupEnv(childEnv); ok {
		os.Exit(runChild(strings.Fields(args)))
	}
	os.Exit(m.Run())
}

// testDeps are the seams tasks/tokenize wires (the environment's object store, the
// keyed tokenizer of docs/contracts.md §4 and the landing Parquet writer).
var testDeps = cdc.Deps{
	OpenStore: func(_ context.Context, os registry.ObjectStore) (objstore.Store, error) {
		if os.Kind != "dir" {
			return nil, fmt.Errorf("object store kind %s: the test child only has the directory store", os.Kind)
		}
		return dir.Store{Root: os.Path}, nil
	},
	NewWriter:   landing.OpenParquet,
	CodeVersion: "test",
}

func runChild(args []string) int {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	env := map[string]string{}
	for _, kv := range os.Environ() {
		if k, v, ok := strings.Cut(kv, "="); ok {
			env[k] = v
		}
	}
	if err := cdc.Command(ctx, args, env, os.Stdout, os.Stderr, testDeps); err != nil {
		fmt.Fprintln(os.Stderr, "tokenize cdc:", err)
		return exitcode.Of(err)
	}
	return 0
}

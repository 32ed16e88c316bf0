package main

import (
	"io"

	"context"
	"fmt"
	"github.com/shopsphere/shardflow/internal/landing"

	"github.com/shopsphere/shardflow/internal/exitcode"
	"github.com/shopsphere/shardflow/internal/extract"
	"github.com/shopsphere/shardflow/internal/extract/stopgap"
	"github.com/shopsphere/shardflow/internal/registry"
)

type deps struct {
	store     extract.Store
	tokenizer extract.Tokenizer
	newWriter extract.NewFileWriter
}

// openDeps builds the object store of the environment, the tokenizer and the Parquet
// writer. (The stopgap implementations stand in for internal/objstore,
// internal/tokenize and the landing writer until those land.)
func openDeps(ctx context.Context, reg *registry.Registry, env map[string]string) (*deps, error) {
	name := env["SHARDFLOW_ENV"]
	if name == "" {
		name = "local"
	}
	target, err := reg.Environment(name)
	if err != nil {
		return nil, exitcode.Wrap(exitcode.Usage, err)
	}
	var store extract.Store
	switch target.ObjectStore.Kind {
	case "dir":
		store = stopgap.Dir{Root: target.ObjectStore.Path}
	default:
		return nil, exitcode.Errorf(exitcode.Usage, "object store kind %q is not supported yet", target.ObjectStore.Kind)
	}
	key := env[reg.Tokenizer.Key.Env]
	if key == "" {
		return nil, exitcode.Errorf(exitcode.Usage, "tokenizer: environment variable %s (the key) is not set", reg.Tokenizer.Key.Env)
	}
	tok, err := stopgap.NewTokenizer(reg.Tokenizer.KeyID, []byte(key))
	if err != nil {
		return nil, exitcode.Wrap(exitcode.Usage, fmt.Errorf("tokenizer (%s): %w", reg.Tokenizer.Key.Env, err))
	}
	return &deps{store: store, tokenizer: tok, newWriter: newWriter}, nil
}

func newWriter(w io.Writer, cols []landing.Column) (extract.FileWriter, error) {
	pw, err := stopgap.NewWriter(w, cols)
	if err != nil {
		return nil, err
	}
	return pw, nil
}

package main

import (
	"context"
	"fmt"
	"io"

	"github.com/shopsphere/shardflow/internal/exitcode"
	"github.com/shopsphere/shardflow/internal/extract"
	"github.com/shopsphere/shardflow/internal/landing"
	"github.com/shopsphere/shardflow/internal/objstore/backend"
	"github.com/shopsphere/shardflow/internal/registry"
	"github.com/shopsphere/shardflow/internal/tokenize"
)

type deps struct {
	store     extract.Store
	tokenizer extract.Tokenizer
	newWriter extract.NewFileWriter
}

// openDeps builds the environment's object store (a directory or S3), the keyed
// tokenizer and the landing Parquet writer.
func openDeps(ctx context.Context, sel *registry.Selection, env map[string]string) (*deps, error) {
	reg, target := sel.Registry, sel.Env
	store, err := backend.Open(ctx, target.ObjectStore, backend.CredentialsFromEnv(env))
	if err != nil {
		return nil, err
	}
	key := env[reg.Tokenizer.Key.Env]
	if key == "" {
		return nil, exitcode.Errorf(exitcode.Usage, "tokenizer: environment variable %s (the key) is not set", reg.Tokenizer.Key.Env)
	}
	tok, err := tokenize.New(reg.Tokenizer.KeyID, []byte(key))
	if err != nil {
		return nil, exitcode.Wrap(exitcode.Usage, fmt.Errorf("tokenizer (%s): %w", reg.Tokenizer.Key.Env, err))
	}
	return &deps{store: store, tokenizer: tok, newWriter: newWriter}, nil
}

func newWriter(w io.Writer, cols []landing.Column) (extract.FileWriter, error) {
	pw, err := landing.NewParquetWriter(w, cols)
	if err != nil {
		return nil, err
	}
	return pw, nil
}

package main

import (
	"context"
	"io"

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
	store, err := backend.Open(ctx, sel.Env.ObjectStore, backend.CredentialsFromEnv(env))
	if err != nil {
		return nil, err
	}
	tok, err := tokenize.FromEnv(sel.Registry.Tokenizer, env)
	if err != nil {
		return nil, err
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

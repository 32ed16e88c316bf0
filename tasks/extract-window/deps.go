package main

import (
	"context"

	"github.com/shopsphere/shardflow/internal/landing"
	"github.com/shopsphere/shardflow/internal/objstore"
	"github.com/shopsphere/shardflow/internal/objstore/backend"
	"github.com/shopsphere/shardflow/internal/registry"
	"github.com/shopsphere/shardflow/internal/tokenize"
)

type deps struct {
	store     objstore.Store
	tokenizer landing.Tokenizer
	newWriter landing.NewFileWriter
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
	return &deps{store: store, tokenizer: tok, newWriter: landing.OpenParquet}, nil
}

package main

import (
	"github.com/shopsphere/shardflow/internal/landing"
	"github.com/shopsphere/shardflow/internal/objstore"
	"github.com/shopsphere/shardflow/internal/objstore/dir"
	"github.com/shopsphere/shardflow/internal/registry"
	"github.com/shopsphere/shardflow/internal/tokenize"
)

type benchDeps struct {
	store     objstore.Store
	tokenizer landing.Tokenizer
	newWriter landing.NewFileWriter
}

func newDeps(reg *registry.Registry, lake string) (*benchDeps, error) {
	tok, err := tokenize.New(reg.Tokenizer.KeyID, []byte("bench-key-bench-key-bench-key-bench-key"))
	if err != nil {
		return nil, err
	}
	return &benchDeps{store: dir.Store{Root: lake}, tokenizer: tok, newWriter: landing.OpenParquet}, nil
}

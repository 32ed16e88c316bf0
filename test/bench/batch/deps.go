package main

import (
	"io"

	"github.com/shopsphere/shardflow/internal/extract"
	"github.com/shopsphere/shardflow/internal/landing"
	"github.com/shopsphere/shardflow/internal/objstore/dir"
	"github.com/shopsphere/shardflow/internal/registry"
	"github.com/shopsphere/shardflow/internal/tokenize"
)

type benchDeps struct {
	store     extract.Store
	tokenizer extract.Tokenizer
	newWriter extract.NewFileWriter
}

func newDeps(reg *registry.Registry, lake string) (*benchDeps, error) {
	tok, err := tokenize.New(reg.Tokenizer.KeyID, []byte("bench-key-bench-key-bench-key-bench-key"))
	if err != nil {
		return nil, err
	}
	return &benchDeps{store: dir.Store{Root: lake}, tokenizer: tok, newWriter: newWriter}, nil
}

func newWriter(w io.Writer, cols []landing.Column) (extract.FileWriter, error) {
	pw, err := landing.NewParquetWriter(w, cols)
	if err != nil {
		return nil, err
	}
	return pw, nil
}

package main

import (
	"io"

	"github.com/shopsphere/shardflow/internal/extract"
	"github.com/shopsphere/shardflow/internal/extract/stopgap"
	"github.com/shopsphere/shardflow/internal/landing"
	"github.com/shopsphere/shardflow/internal/registry"
)

type benchDeps struct {
	store     extract.Store
	tokenizer extract.Tokenizer
	newWriter extract.NewFileWriter
}

func newDeps(reg *registry.Registry, lake string) (*benchDeps, error) {
	tok, err := stopgap.NewTokenizer(reg.Tokenizer.KeyID, []byte("bench-key-bench-key-bench-key-bench-key"))
	if err != nil {
		return nil, err
	}
	return &benchDeps{store: stopgap.Dir{Root: lake}, tokenizer: tok, newWriter: newWriter}, nil
}

func newWriter(w io.Writer, cols []landing.Column) (extract.FileWriter, error) {
	pw, err := stopgap.NewWriter(w, cols)
	if err != nil {
		return nil, err
	}
	return pw, nil
}

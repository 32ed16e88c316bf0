package tokenize

import (
	"bufio"
	"context"
	"flag"
	"fmt"
	"io"
	"strings"

	"github.com/shopsphere/shardflow/internal/command"
	"github.com/shopsphere/shardflow/internal/exitcode"
	"github.com/shopsphere/shardflow/internal/registry"
)

// LookupUsage is the help text of `tokenize lookup`.
const LookupUsage = `usage: tokenize lookup --column NAME [--table TABLE] [--key-id ID] < values

Reads values from stdin, one per line, and prints the landed form of each, one per
line in the same order: what the column holds in landed files and the warehouse, so an
operator can find a card's rows (WHERE card_number = '<printed token>'). Values are read
from stdin only, never from the command line, to keep card numbers out of shell history
and process lists; pipe them from a file or type them and end with Ctrl-D.

  --column   the PCI column (token, last4 or bin policy), e.g. card_number
  --table    the table, when the column name is in more than one
  --key-id   the key id to compute tokens for (default tokenizer.key_id of shards.yaml);
             the key variable must then hold that id's key (docs/objstore.md, key rotation)

Environment: SHARDFLOW_REGISTRY, the tokenizer key variable named in shards.yaml
(SHARDFLOW_TOKEN_KEY). Exit codes: 0 done; 2 usage, configuration, or a line that is
not a value of the column (named by line number, never by value).
`

// LookupCommand runs `tokenize lookup`. env is the process environment (read by main).
func LookupCommand(ctx context.Context, args []string, env map[string]string, stdin io.Reader, stdout, stderr io.Writer) error {
	fs := command.NewFlagSet("tokenize lookup", stderr, func(*flag.FlagSet) { fmt.Fprint(stderr, LookupUsage) })
	column := fs.String("column", "", "PCI column")
	table := fs.String("table", "", "table (when the column is in several)")
	keyID := fs.String("key-id", "", "key id (default tokenizer.key_id)")
	if err := command.Parse(fs, args); err != nil {
		return err
	}
	if fs.NArg() > 0 {
		return exitcode.Errorf(exitcode.Usage, "tokenize lookup: values are read from stdin, never from arguments (shell history and process lists would keep them)")
	}
	if *column == "" {
		return exitcode.Errorf(exitcode.Usage, "tokenize lookup: --column is required")
	}
	sel, err := registry.Select(env)
	if err != nil {
		return exitcode.Wrap(exitcode.Usage, err)
	}
	reg := sel.Registry
	col, err := findColumn(reg, *table, *column)
	if err != nil {
		return exitcode.Wrap(exitcode.Usage, fmt.Errorf("tokenize lookup: %w", err))
	}
	cfg := reg.Tokenizer
	if *keyID != "" {
		cfg.KeyID = *keyID
	}
	tok, err := FromEnv(cfg, env)
	if err != nil {
		return fmt.Errorf("tokenize lookup: %w", err)
	}
	return exitcode.Wrap(exitcode.Usage, tok.Lookup(ctx, col, stdin, stdout))
}

// findColumn finds the column named name, in table or in the only table that has it.
func findColumn(reg *registry.Registry, table, name string) (registry.Column, error) {
	var found []string
	var col registry.Column
	for _, t := range reg.Tables {
		if table != "" && t.Name != table {
			continue
		}
		if c, ok := t.Column(name); ok {
			found = append(found, t.Name)
			col = c
		}
	}
	switch {
	case len(found) == 0 && table != "":
		if _, ok := reg.Table(table); !ok {
			return col, fmt.Errorf("table %s is not in shards.yaml", table)
		}
		return col, fmt.Errorf("table %s has no column %s", table, name)
	case len(found) == 0:
		return col, fmt.Errorf("no table of shards.yaml has a column %s", name)
	case len(found) > 1:
		return col, fmt.Errorf("column %s is in tables %s: give --table", name, strings.Join(found, ", "))
	}
	switch col.PCI {
	case registry.PCIToken, registry.PCILast4, registry.PCIBIN:
		return col, nil
	case registry.PCIDrop:
		return col, fmt.Errorf("column %s.%s has policy drop: it never lands, there is nothing to look up", found[0], name)
	}
	return col, fmt.Errorf("column %s.%s is not tokenized (policy keep): it lands as it is", found[0], name)
}

// Lookup reads values from in, one per line (a trailing \r is dropped), and writes the
// landed form of each to out, one line per value in order. A line that is not a value
// of the column stops it with an error naming the line number, never the value; the
// lines before it are written.
func (t *Tokenizer) Lookup(ctx context.Context, c registry.Column, in io.Reader, out io.Writer) error {
	sc := bufio.NewScanner(in)
	sc.Buffer(make([]byte, 0, 4096), 1<<20)
	w := bufio.NewWriter(out)
	n := 0
	for sc.Scan() {
		if err := ctx.Err(); err != nil {
			return err
		}
		n++
		v, err := t.Apply(c, strings.TrimSuffix(sc.Text(), "\r"))
		if err != nil {
			w.Flush()
			return fmt.Errorf("stdin line %d: %w", n, err)
		}
		w.WriteString(v)
		w.WriteByte('\n')
		if err := w.Flush(); err != nil { // one line at a time: an operator may be typing
			return fmt.Errorf("write: %w", err)
		}
	}
	if err := sc.Err(); err != nil {
		return fmt.Errorf("stdin line %d: %w", n+1, err)
	}
	return nil
}

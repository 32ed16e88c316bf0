package command

import (
	"errors"
	"flag"
	"io"

	"github.com/shopsphere/shardflow/internal/exitcode"
)

// NewFlagSet returns the flag set of a command, name as typed ("dq", "tokenize
// lookup"). It returns parse errors instead of exiting, writes them to stderr, and on -h
// or a bad flag calls usage with the set, which prints the command's help to stderr
// (its text, and fs.PrintDefaults() where the text does not list the flags itself).
func NewFlagSet(name string, stderr io.Writer, usage func(fs *flag.FlagSet)) *flag.FlagSet {
	fs := flag.NewFlagSet(name, flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.Usage = func() { usage(fs) }
	return fs
}

// Parse parses args into fs. After -h it returns flag.ErrHelp, which the command
// returns as is: Main exits 0 without printing it (exitcode.Of gives OK). Any other flag
// error carries exitcode.Usage. Positional arguments are left in fs.Args(); a command
// that takes none refuses them with NoArgs.
func Parse(fs *flag.FlagSet, args []string) error {
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return err
		}
		return exitcode.Wrap(exitcode.Usage, err)
	}
	return nil
}

// NoArgs refuses positional arguments left after fs's flags (flag parsing stops at the
// first one, so a flag after it would be ignored): an exitcode.Usage error naming the
// first.
func NoArgs(fs *flag.FlagSet) error {
	if fs.NArg() > 0 {
		return exitcode.Errorf(exitcode.Usage, "unexpected argument %q", fs.Arg(0))
	}
	return nil
}

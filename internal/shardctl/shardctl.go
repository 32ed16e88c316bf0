// Package shardctl is the operator CLI: validate shards.yaml, run a local fleet, plan
// and apply generated artifacts, and drive Airflow. Each subcommand lives in its own
// file and registers itself with register, so areas do not edit one shared switch.
package shardctl

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"sort"
	"strings"

	"github.com/shopsphere/shardflow/internal/command"
	"github.com/shopsphere/shardflow/internal/exitcode"
	"github.com/shopsphere/shardflow/internal/registry"
)

// Env is what main read from the process environment; internal code never reads it.
type Env struct {
	Registry string            // path to shards.yaml (SHARDFLOW_REGISTRY)
	Name     string            // environment in shards.yaml (SHARDFLOW_ENV)
	Vars     map[string]string // the rest of the environment, for secret references
	Stdout   io.Writer
	Stderr   io.Writer
}

// Command is one subcommand.
type Command struct {
	Name    string
	Summary string // one line for the command list
	Usage   string // argument synopsis, e.g. "[--shards N] [--dir DIR]"
	Help    string // what it does, shown by `shardctl help NAME`
	Run     func(ctx context.Context, env Env, args []string) error
}

var commands = map[string]Command{}

func register(c Command) {
	if _, dup := commands[c.Name]; dup {
		panic("shardctl: command registered twice: " + c.Name)
	}
	commands[c.Name] = c
}

// Run dispatches args (without the program name) to a subcommand.
func Run(ctx context.Context, env Env, args []string) error {
	if len(args) == 0 || args[0] == "help" || args[0] == "-h" || args[0] == "--help" {
		if len(args) > 1 {
			if c, ok := lookup(args[1]); ok {
				fmt.Fprintf(env.Stdout, "usage: shardctl %s %s\n\n%s\n", c.Name, c.Usage, strings.TrimSpace(c.Help))
				return nil
			}
		}
		usage(env.Stdout)
		if len(args) == 0 {
			return exitcode.Errorf(exitcode.Usage, "no command given")
		}
		return nil
	}
	c, ok := lookup(args[0])
	if !ok {
		usage(env.Stderr)
		return exitcode.Errorf(exitcode.Usage, "unknown command %q", args[0])
	}
	if err := c.Run(ctx, env, args[1:]); err != nil && !errors.Is(err, flag.ErrHelp) {
		return err
	}
	return nil
}

func lookup(name string) (Command, bool) {
	c, ok := commands[name]
	return c, ok
}

func usage(w io.Writer) {
	fmt.Fprint(w, `shardctl operates the shardflow pipeline: the shard registry (shards.yaml), the
local fleet, generated artifacts and Airflow runs.

usage: shardctl <command> [flags]

commands:
`)
	names := make([]string, 0, len(commands))
	for n := range commands {
		names = append(names, n)
	}
	sort.Strings(names)
	for _, n := range names {
		fmt.Fprintf(w, "  %-18s %s\n", n, commands[n].Summary)
	}
	fmt.Fprint(w, `
environment:
  SHARDFLOW_REGISTRY  path to shards.yaml (default ./shards.yaml)
  SHARDFLOW_ENV       environment in shards.yaml to use (default local)

Run 'shardctl help <command>' for a command's flags.
`)
}

// newFlags returns a flag set that reports errors instead of exiting and prints the
// command's usage and help on -h.
func newFlags(c Command, env Env) *flag.FlagSet {
	return command.NewFlagSet("shardctl "+c.Name, env.Stderr, func(fs *flag.FlagSet) {
		fmt.Fprintf(env.Stderr, "usage: shardctl %s %s\n\n%s\n\nflags:\n", c.Name, c.Usage, strings.TrimSpace(c.Help))
		fs.PrintDefaults()
	})
}

// noArgs refuses positional arguments left after the flags (command.NoArgs); what
// names the command in the error (e.g. "plan", "connectors apply").
func noArgs(fs *flag.FlagSet, what string) error {
	if err := command.NoArgs(fs); err != nil {
		return fmt.Errorf("%s: %w", what, err)
	}
	return nil
}

// loadRegistry loads env.Registry; a file that does not parse or validate is a usage
// error (exit 2) listing every problem.
func loadRegistry(env Env) (*registry.Registry, error) {
	r, err := registry.Load(env.Registry)
	if err != nil {
		return nil, exitcode.Wrap(exitcode.Usage, err)
	}
	return r, nil
}

// loadEnvironment loads shards.yaml and the environment env names.
func loadEnvironment(env Env) (*registry.Registry, *registry.Environment, error) {
	r, err := loadRegistry(env)
	if err != nil {
		return nil, nil, err
	}
	e, err := r.Environment(env.Name)
	if err != nil {
		return nil, nil, exitcode.Wrap(exitcode.Usage, err)
	}
	return r, e, nil
}

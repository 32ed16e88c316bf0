// Package command is what every shardflow binary's main does the same way: its context
// ends on SIGINT or SIGTERM (Kubernetes stops a pod with SIGTERM, Airflow's local
// target a subprocess with SIGTERM), it reads the process environment as a map, and it
// exits with the code the returned error carries (exitcode.Of: 75 retry, 2 usage, ...),
// after printing the error prefixed with the binary's name. Help asked for is not an
// error. Its commands parse their flags the same way too (NewFlagSet, Parse, NoArgs):
// -h prints the help and exits 0, a bad flag or a stray argument exits 2.
package command

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"strings"
	"syscall"

	"github.com/shopsphere/shardflow/internal/exitcode"
)

// Main runs a binary's command and exits the process with its exit code.
func Main(name string, run func(ctx context.Context, env map[string]string) error) {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	err := run(ctx, Environ())
	stop()
	os.Exit(report(os.Stderr, name, err))
}

// report prints err, unless it is nil or a request for help, prefixed with the binary's
// name, and returns the exit code it carries.
func report(stderr io.Writer, name string, err error) int {
	if errors.Is(err, flag.ErrHelp) {
		return exitcode.OK
	}
	if err != nil {
		fmt.Fprintf(stderr, "%s: %v\n", name, err)
	}
	return exitcode.Of(err)
}

// Environ is the process environment as a map from name to value.
func Environ() map[string]string {
	vars := map[string]string{}
	for _, kv := range os.Environ() {
		k, v, _ := strings.Cut(kv, "=")
		vars[k] = v
	}
	return vars
}

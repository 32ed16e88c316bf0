// Command shardctl is the operator CLI of shardflow. See `shardctl help`.
package main

import (
	"context"
	"fmt"
	"os"
	"os/signal"
	"strings"
	"syscall"

	"github.com/shopsphere/shardflow/internal/exitcode"
	"github.com/shopsphere/shardflow/internal/registry"
	"github.com/shopsphere/shardflow/internal/shardctl"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	err := shardctl.Run(ctx, environ(), os.Args[1:])
	if err != nil {
		fmt.Fprintln(os.Stderr, "shardctl:", err)
	}
	os.Exit(exitcode.Of(err))
}

func environ() shardctl.Env {
	vars := map[string]string{}
	for _, kv := range os.Environ() {
		k, v, _ := strings.Cut(kv, "=")
		vars[k] = v
	}
	env := shardctl.Env{Registry: vars[registry.PathVar], Name: vars[registry.EnvVar], Vars: vars, Stdout: os.Stdout, Stderr: os.Stderr}
	if env.Registry == "" {
		env.Registry = registry.DefaultPath
	}
	if env.Name == "" {
		env.Name = registry.DefaultEnv
	}
	return env
}

// Command shardctl is the operator CLI of shardflow. See `shardctl help`.
package main

import (
	"context"
	"os"

	"github.com/shopsphere/shardflow/internal/command"
	"github.com/shopsphere/shardflow/internal/registry"
	"github.com/shopsphere/shardflow/internal/shardctl"
)

func main() {
	command.Main("shardctl", func(ctx context.Context, vars map[string]string) error {
		env := shardctl.Env{Registry: vars[registry.PathVar], Name: vars[registry.EnvVar], Vars: vars, Stdout: os.Stdout, Stderr: os.Stderr}
		if env.Registry == "" {
			env.Registry = registry.DefaultPath
		}
		if env.Name == "" {
			env.Name = registry.DefaultEnv
		}
		return shardctl.Run(ctx, env, os.Args[1:])
	})
}

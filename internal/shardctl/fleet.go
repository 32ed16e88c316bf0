package shardctl

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"strings"

	"github.com/shopsphere/shardflow/internal/command"
	"github.com/shopsphere/shardflow/internal/exitcode"
	"github.com/shopsphere/shardflow/internal/fleet"
	"github.com/shopsphere/shardflow/internal/registry"
)

func init() {
	register(Command{
		Name:    "fleet",
		Summary: "run the local shard fleet: one PostgreSQL cluster per shard (up|down|status|env)",
		Usage:   "up|down|status|env [--shards N] [--dir DIR] [--base-port PORT] [--purge]",
		Help: `Runs one real PostgreSQL cluster per shard of the registry on 127.0.0.1, for local
work, the demo and the end-to-end tests (docs/runbooks/local-fleet.md).

  up      create missing clusters, start stopped ones, apply the schema
          (internal/fleet/schema.sql) and write DIR/fleet.env. Safe to re-run.
          Shard i of the registry listens on --base-port + i.
  down    stop every cluster of the fleet (data is kept); --purge also deletes DIR.
  status  print each shard's port, whether it runs, and its row counts.
  env     print the fleet's DSNs as shell exports: eval "$(shardctl fleet env)".

--shards N: the number of shards. When the registry has another number, up writes
an even-split registry for N shards next to DIR (var/shards-N.yaml, see
'shardctl help init') and uses it; export SHARDFLOW_REGISTRY to that file for the
other commands.

fleet.env (mode 0600, it holds the fleet's generated passwords) exports, per shard,
the variables shards.yaml names (SHARDFLOW_<ID>_EXTRACT_DSN, ..._REPLICATION_DSN)
and SHARDFLOW_<ID>_ADMIN_DSN, the superuser the traffic generator writes with.
Clusters run as the postgres OS user (initdb refuses root); PostgreSQL comes from
Debian (make deps-apt).`,
		Run: runFleet,
	})
}

func runFleet(ctx context.Context, env Env, args []string) error {
	c := commands["fleet"]
	if len(args) == 0 || strings.HasPrefix(args[0], "-") {
		if len(args) > 0 && (args[0] == "-h" || args[0] == "--help") {
			fmt.Fprintf(env.Stdout, "usage: shardctl fleet %s\n\n%s\n", c.Usage, c.Help)
			return nil
		}
		return exitcode.Errorf(exitcode.Usage, "fleet: want a subcommand: up, down, status or env")
	}
	sub := args[0]
	fs := newFlags(c, env)
	shards := fs.Int("shards", 0, "number of shards (default: as many as the registry has)")
	dir := fs.String("dir", filepath.Join("var", "fleet"), "directory of the fleet")
	basePort := fs.Int("base-port", fleet.DefaultBasePort, "port of the first shard; shard i listens on base-port + i")
	purge := fs.Bool("purge", false, "down: also delete the fleet's directory (data, logs, passwords)")
	if err := command.Parse(fs, args[1:]); err != nil {
		return err
	}
	if err := noArgs(fs, "fleet "+sub); err != nil {
		return err
	}
	switch sub {
	case "up":
		return fleetUp(ctx, env, *dir, *shards, *basePort)
	case "down":
		if err := fleet.Down(ctx, *dir, *purge); err != nil {
			return err
		}
		if *purge {
			fmt.Fprintf(env.Stdout, "fleet in %s stopped and deleted\n", *dir)
		} else {
			fmt.Fprintf(env.Stdout, "fleet in %s stopped (data kept; --purge deletes it)\n", *dir)
		}
		return nil
	case "status":
		return fleetStatus(ctx, env, *dir)
	case "env":
		f, err := fleet.Open(*dir)
		if err != nil {
			return err
		}
		b, err := os.ReadFile(fleet.EnvFile(f.Dir))
		if err != nil {
			return fmt.Errorf("fleet env: %w (run `shardctl fleet up`)", err)
		}
		_, err = env.Stdout.Write(b)
		return err
	default:
		return exitcode.Errorf(exitcode.Usage, "fleet: unknown subcommand %q (want up, down, status or env)", sub)
	}
}

func fleetUp(ctx context.Context, env Env, dir string, shards, basePort int) error {
	regPath := env.Registry
	reg, err := registry.Load(regPath)
	if err != nil {
		return exitcode.Wrap(exitcode.Usage, err)
	}
	if shards > 0 && shards != len(reg.Shards) {
		base, err := os.ReadFile(regPath)
		if err != nil {
			return err
		}
		text, err := registry.Generate(base, shards, 0)
		if err != nil {
			return exitcode.Wrap(exitcode.Usage, err)
		}
		regPath = filepath.Join(filepath.Dir(filepath.Clean(dir)), fmt.Sprintf("shards-%d.yaml", shards))
		if err := os.MkdirAll(filepath.Dir(regPath), 0o755); err != nil {
			return err
		}
		if err := os.WriteFile(regPath, text, 0o644); err != nil {
			return fmt.Errorf("fleet up: write registry: %w", err)
		}
		fmt.Fprintf(env.Stdout, "%s has %d shards: wrote %s for %d (export SHARDFLOW_REGISTRY=%s for the other commands)\n",
			env.Registry, len(reg.Shards), regPath, shards, regPath)
		if reg, err = registry.Load(regPath); err != nil {
			return err
		}
	}
	if basePort < 1024 || basePort+len(reg.Shards) > 65535 {
		return exitcode.Errorf(exitcode.Usage, "fleet up: --base-port %d does not leave room for %d shards", basePort, len(reg.Shards))
	}
	if old, err := fleet.Open(dir); err == nil {
		var extra []string
		for _, s := range old.Shards {
			if _, ok := reg.Shard(s.ID); !ok {
				extra = append(extra, s.ID)
			}
		}
		if len(extra) > 0 {
			fmt.Fprintf(env.Stderr, "warning: the fleet in %s also has shards %s, which %s does not list: they are left as they are, "+
				"and rows written under another registry may not match this one's ownership (`shardctl fleet down --purge` starts over)\n",
				dir, strings.Join(extra, ","), regPath)
		}
	}
	log := slog.New(slog.NewTextHandler(env.Stderr, &slog.HandlerOptions{Level: slog.LevelWarn}))
	f, err := fleet.Up(ctx, fleet.Config{Dir: dir, BasePort: basePort, Registry: reg, Logger: log})
	if err != nil {
		if errors.Is(err, fleet.ErrNoPostgres) {
			return exitcode.Wrap(exitcode.Usage, err)
		}
		return err
	}
	fmt.Fprintf(env.Stdout, "fleet up: %d shards from %s in %s\n", len(f.Shards), regPath, f.Dir)
	for _, s := range f.Shards {
		fmt.Fprintf(env.Stdout, "  %-6s 127.0.0.1:%d  database %s\n", s.ID, s.Port, fleet.Database)
	}
	fmt.Fprintf(env.Stdout, "DSNs: source %s   (or: eval \"$(shardctl fleet env)\")\n", fleet.EnvFile(f.Dir))
	return nil
}

func fleetStatus(ctx context.Context, env Env, dir string) error {
	f, err := fleet.Open(dir)
	if err != nil {
		return err
	}
	st, err := f.Status(ctx)
	if err != nil {
		return err
	}
	fmt.Fprintf(env.Stdout, "fleet in %s\n", f.Dir)
	fmt.Fprintf(env.Stdout, "%-6s %6s  %-8s", "shard", "port", "state")
	for _, t := range fleet.Tables {
		fmt.Fprintf(env.Stdout, " %12s", t)
	}
	fmt.Fprintln(env.Stdout)
	down := 0
	for _, s := range st {
		state := "running"
		if !s.Running {
			state = "stopped"
			down++
		}
		fmt.Fprintf(env.Stdout, "%-6s %6d  %-8s", s.ID, s.Port, state)
		for _, t := range fleet.Tables {
			if s.Rows == nil {
				fmt.Fprintf(env.Stdout, " %12s", "-")
			} else {
				fmt.Fprintf(env.Stdout, " %12d", s.Rows[t])
			}
		}
		if s.Err != nil {
			fmt.Fprintf(env.Stdout, "  (%v)", s.Err)
		}
		fmt.Fprintln(env.Stdout)
	}
	if down > 0 {
		return exitcode.Errorf(exitcode.Retryable, "fleet status: %d of %d shards stopped (`shardctl fleet up` starts them)", down, len(st))
	}
	return nil
}

// fleetDSNs returns each registry shard's admin DSN: from the variable its
// connection.admin names (else SHARDFLOW_<ID>_ADMIN_DSN) when the environment sets it,
// else from the local fleet in dir.
func fleetDSNs(env Env, reg *registry.Registry, dir string) (map[string]string, error) {
	out := map[string]string{}
	var f *fleet.Fleet
	var ferr error
	for _, s := range reg.Shards {
		if v := env.Vars[fleet.AdminEnvOf(s)]; v != "" {
			out[s.ID] = v
			continue
		}
		if f == nil && ferr == nil {
			f, ferr = fleet.Open(dir)
		}
		if ferr != nil {
			return nil, fmt.Errorf("shard %s: %s is not set and %w", s.ID, fleet.AdminEnvOf(s), ferr)
		}
		fs, ok := f.Shard(s.ID)
		if !ok {
			continue // not in the local fleet; the workload says so if it owns buckets
		}
		out[s.ID] = fs.AdminDSN
	}
	return out, nil
}

package shardctl

import (
	"context"
	"fmt"
	"log/slog"
	"path/filepath"
	"time"

	"github.com/shopsphere/shardflow/internal/command"
	"github.com/shopsphere/shardflow/internal/exitcode"
	"github.com/shopsphere/shardflow/internal/workload"
)

func init() {
	register(Command{
		Name:    "traffic",
		Summary: "write seeded order traffic into the shards, routed by bucket ownership",
		Usage:   "--orders N | --duration D [--rate R] [--seed S] [--writers W] [--customers C] [--dir DIR]",
		Help: `Writes realistic order traffic the way the application does: each customer's
bucket (registry.Bucket(customer_id)) decides the shard, the one owning the bucket now.
New orders with 1-5 items and a card payment (Luhn-valid PANs from test BIN ranges),
status updates (placed, paid, shipped, delivered, cancelled), partial and full refunds,
and a few soft deletes, in 8 regions and 6 currencies. About 60% of the transactions
are new orders.

Stops after --orders new orders or after --duration. --rate caps new orders per
second (0: as fast as the shards take them). The same --seed gives the same rows
(customers, amounts, cards, statuses, the random bits of the UUIDv7 ids) on the same
shards; timestamps and the ids' clock bits differ.

Writes as each shard's superuser: $SHARDFLOW_<ID>_ADMIN_DSN when set, else the local
fleet in --dir. Prints rows inserted/updated per shard and table. Card data is
never printed.`,
		Run: runTraffic,
	})
}

func runTraffic(ctx context.Context, env Env, args []string) error {
	c := commands["traffic"]
	fs := newFlags(c, env)
	orders := fs.Int("orders", 0, "stop after this many new orders")
	duration := fs.Duration("duration", 0, "stop after this long (e.g. 30s, 5m)")
	rate := fs.Float64("rate", 0, "new orders per second over all shards (0: unlimited)")
	seed := fs.Int64("seed", 1, "seed of every choice the generator makes")
	writers := fs.Int("writers", 2, "connections per shard")
	customers := fs.Int("customers", 10000, "size of the customer population")
	dir := fs.String("dir", filepath.Join("var", "fleet"), "the local fleet, for shards without an ADMIN_DSN variable")
	if err := command.Parse(fs, args); err != nil {
		return err
	}
	if err := noArgs(fs, "traffic"); err != nil {
		return err
	}
	reg, err := loadRegistry(env)
	if err != nil {
		return err
	}
	cfg := workload.Config{Registry: reg, Seed: *seed, Orders: *orders, Duration: *duration, Rate: *rate,
		Writers: *writers, Customers: *customers,
		Logger: slog.New(slog.NewTextHandler(env.Stderr, &slog.HandlerOptions{Level: slog.LevelWarn}))}
	if err := cfg.Validate(); err != nil {
		return exitcode.Wrap(exitcode.Usage, err)
	}
	if cfg.DSNs, err = fleetDSNs(env, reg, *dir); err != nil {
		return exitcode.Wrap(exitcode.Retryable, fmt.Errorf("traffic: %w", err))
	}
	what := fmt.Sprintf("%d orders", *orders)
	if *duration > 0 {
		what = duration.String()
	}
	if *rate > 0 {
		what += fmt.Sprintf(" at %g orders/s", *rate)
	}
	fmt.Fprintf(env.Stdout, "traffic: %s, seed %d, %d shards, %d writers each, routed by %s at epoch %d\n",
		what, *seed, len(cfg.DSNs), *writers, env.Registry, reg.EpochAt(time.Now()))
	st, err := workload.Run(ctx, cfg)
	if st != nil {
		st.Print(env.Stdout)
	}
	if err != nil {
		return exitcode.Wrap(exitcode.Retryable, err)
	}
	return nil
}

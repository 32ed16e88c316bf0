package shardctl

import (
	"context"
	"fmt"
	"log/slog"
	"os"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/shopsphere/shardflow/internal/cdc"
	"github.com/shopsphere/shardflow/internal/command"
	"github.com/shopsphere/shardflow/internal/exitcode"
	"github.com/shopsphere/shardflow/internal/move"
	"github.com/shopsphere/shardflow/internal/plan"
	"github.com/shopsphere/shardflow/internal/registry"
	whbackend "github.com/shopsphere/shardflow/internal/warehouse/backend"
)

func init() {
	register(Command{
		Name:    "move",
		Summary: "move buckets between live shards, or split a shard onto a new one",
		Usage:   "plan --from S --to T --buckets LO-HI [--new-shard] [--write] | start|status|cutover|verify|cleanup|abort EPOCH [--dry-run]",
		Help: `Moves buckets from one shard to another under live traffic, exactly (docs/decisions/0017,
docs/runbooks/split-a-shard.md). Every step reads where the move stands from the
shards and shards.yaml and does only what is missing: a step killed anywhere is
resumed by running it again; before the switch, abort undoes the move.

  plan     check a move and print its steps; --write declares it in shards.yaml as
           pending (with --new-shard, the target is added as an onboarding shard: a
           split). Commit that, run shardctl generate, deploy, then start.
  start    the target says incoming (its trigger refuses application writes to the
           buckets), a row-filtered publication on the source and a subscription on the
           target copy the buckets' rows while writes go on
  status   the copy's progress and each shard's fence
  cutover  when caught up: fence the source's buckets (writes refused, retryable, well
           under a second), write each shard's marker on its own clock, drain the copy,
           switch; records the fence in shards.yaml: commit it and regenerate
  verify   every source row of the buckets is on the target, same or newer
  cleanup  delete the moved rows from the source, refused until the fence is recorded
           and deployed, verify passed, every batch window of the source through its
           marker is extracted and loaded, and CDC landed its changes through it
           (--wait D: keep checking that long)
  abort    before the switch: drop the copy, lift the fence

The move tool connects with each shard's connection.admin DSN (a superuser, or
rds_superuser) and, for the copy and CDC checks, its replication DSN. Exit codes: 0
done, 2 refused (the message says why), 3 verify found differences, 75 not yet
(copy not caught up, pipeline not through the marker, a shard unreachable): run again.`,
		Run: runMove,
	})
}

func runMove(ctx context.Context, env Env, args []string) error {
	c := commands["move"]
	if len(args) == 0 {
		return exitcode.Errorf(exitcode.Usage, "move: which step? (plan, start, status, cutover, verify, cleanup, abort)")
	}
	step, rest := args[0], args[1:]
	if step == "plan" {
		return runMovePlan(ctx, c, env, rest)
	}
	fs := newFlags(c, env)
	dry := fs.Bool("dry-run", false, "print each step; change nothing")
	wait := fs.Duration("wait", 0, "cleanup: keep checking the pipeline's gates this long")
	fenceTimeout := fs.Duration("fence-timeout", 30*time.Second, "cutover: the longest wait for transactions older than the fence")
	catchUp := fs.Duration("catch-up-timeout", 10*time.Minute, "cutover: the longest wait for the copy to catch up")
	maxSkew := fs.Duration("max-skew", 10*time.Second, "start, cutover: the largest clock difference between the shards accepted")
	epochArg := ""
	if len(rest) > 0 && !strings.HasPrefix(rest[0], "-") {
		epochArg, rest = rest[0], rest[1:]
	}
	if err := command.Parse(fs, rest); err != nil {
		return err
	}
	if err := noArgs(fs, "move "+step); err != nil {
		return err
	}
	epoch, err := strconv.Atoi(epochArg)
	if err != nil {
		return exitcode.Errorf(exitcode.Usage, "move %s: give the move's epoch (moves[].epoch in shards.yaml), e.g. `shardctl move %s 2`", step, step)
	}
	reg, e, err := loadEnvironment(env)
	if err != nil {
		return err
	}
	m := &move.Mover{Path: env.Registry, Registry: reg, Epoch: epoch, DSN: moveDSNs(env, reg), Out: env.Stdout, DryRun: *dry,
		FenceTimeout: *fenceTimeout, CatchUpTimeout: *catchUp, MaxSkew: *maxSkew,
		Log: slog.New(slog.NewTextHandler(env.Stderr, &slog.HandlerOptions{Level: slog.LevelWarn}))}
	if fp := env.Vars["SHARDFLOW_MOVE_FAILPOINT"]; fp != "" {
		// tests: die like a killed process right after the named step's effect
		m.Failpoint = func(s string) {
			if s == fp {
				fmt.Fprintf(env.Stderr, "move: failpoint %s: killing the process\n", s)
				_ = syscall.Kill(os.Getpid(), syscall.SIGKILL)
			}
		}
	}
	switch step {
	case "start":
		return m.Start(ctx)
	case "status":
		st, err := m.Status(ctx)
		if err != nil {
			return err
		}
		st.Print(m)
		return nil
	case "cutover":
		res, err := m.Cutover(ctx)
		if err != nil {
			return err
		}
		if res.Recorded {
			fmt.Fprintf(env.Stdout, "move %d: switched; %s records the fence: commit it, run `shardctl generate`, deploy (DAGs, seeds, task image), then `shardctl move verify %d`\n", epoch, env.Registry, epoch)
		}
		return nil
	case "verify":
		_, err := m.Verify(ctx)
		if err == nil && !*dry {
			fmt.Fprintf(env.Stdout, "move %d: verified\n", epoch)
		}
		return err
	case "cleanup":
		wh, err := whbackend.Open(ctx, e.Warehouse, env.Vars)
		if err != nil {
			return err
		}
		defer wh.Close()
		m.Gates = &move.PipelineGates{Registry: reg, Warehouse: wh, Brokers: e.Kafka.Brokers, TopicPrefix: e.Kafka.TopicPrefix, Group: cdc.DefaultGroup,
			ReplicationDSN: func(id string) (string, error) { _, repl, err := m.DSN(id); return repl, err }}
		deadline := time.Now().Add(*wait)
		for {
			deleted, err := m.Cleanup(ctx)
			if err == nil {
				var total int64
				for _, n := range deleted {
					total += n
				}
				if !*dry {
					fmt.Fprintf(env.Stdout, "move %d: %d rows deleted from the source\n", epoch, total)
				}
				return nil
			}
			if exitcode.Of(err) != exitcode.Retryable || time.Now().After(deadline) || ctx.Err() != nil {
				return err
			}
			fmt.Fprintf(env.Stdout, "  %v; checking again in 5s\n", err)
			select {
			case <-ctx.Done():
				return err
			case <-time.After(5 * time.Second):
			}
		}
	case "abort":
		return m.Abort(ctx)
	}
	return exitcode.Errorf(exitcode.Usage, "move: unknown step %q (plan, start, status, cutover, verify, cleanup, abort)", step)
}

// moveDSNs resolves a shard's admin and replication DSNs from the variables shards.yaml
// names for them.
func moveDSNs(env Env, reg *registry.Registry) func(string) (string, string, error) {
	return func(id string) (string, string, error) {
		s, ok := reg.Shard(id)
		if !ok {
			return "", "", fmt.Errorf("shard %s is not in %s", id, env.Registry)
		}
		if s.Connection.Admin.Env == "" {
			return "", "", fmt.Errorf("shard %s: connection.admin is not set in %s: the move tool needs an admin role's DSN (superuser or rds_superuser)", id, env.Registry)
		}
		admin := env.Vars[s.Connection.Admin.Env]
		repl := env.Vars[s.Connection.Replication.Env]
		if admin == "" || repl == "" {
			missing := s.Connection.Admin.Env
			if admin != "" {
				missing = s.Connection.Replication.Env
			}
			return "", "", fmt.Errorf("shard %s: %s is not set (local fleet: source var/fleet/fleet.env)", id, missing)
		}
		return admin, repl, nil
	}
}

func runMovePlan(_ context.Context, c Command, env Env, args []string) error {
	fs := newFlags(c, env)
	from := fs.String("from", "", "the shard giving the buckets")
	to := fs.String("to", "", "the shard receiving them")
	buckets := fs.String("buckets", "", "the bucket ranges, e.g. 1536-2047 or 0-99,200-299")
	newShard := fs.Bool("new-shard", false, "a split: add --to as a new onboarding shard")
	write := fs.Bool("write", false, "declare the move in shards.yaml (pending)")
	if err := command.Parse(fs, args); err != nil {
		return err
	}
	if err := noArgs(fs, "move plan"); err != nil {
		return err
	}
	if *from == "" || *to == "" || *buckets == "" {
		return exitcode.Errorf(exitcode.Usage, "move plan: --from, --to and --buckets are required")
	}
	var rs []registry.Range
	for _, part := range strings.Split(*buckets, ",") {
		r, err := registry.ParseRange(part)
		if err != nil {
			return exitcode.Errorf(exitcode.Usage, "move plan: --buckets: %v", err)
		}
		rs = append(rs, r)
	}
	base, err := loadRegistry(env)
	if err != nil {
		return err
	}
	src, err := os.ReadFile(env.Registry)
	if err != nil {
		return exitcode.Wrap(exitcode.Usage, err)
	}
	if p := base.Pending(); len(p) > 0 {
		return exitcode.Errorf(exitcode.Usage, "move plan: move %d (%s → %s) is still pending; finish it (shardctl move cutover %d) or abort it first", p[0].Epoch, p[0].From, p[0].To, p[0].Epoch)
	}
	owner, ok := base.Shard(*from)
	if !ok {
		return exitcode.Errorf(exitcode.Usage, "move plan: --from %s is not a shard of %s", *from, env.Registry)
	}
	now := time.Now()
	for _, r := range rs {
		for b := r.Lo; b <= r.Hi; b++ {
			if !ownsNow(owner, b) {
				return exitcode.Errorf(exitcode.Usage, "move plan: %s does not own bucket %d now (it owns %s)", *from, b, registry.FormatRanges(owner.Buckets))
			}
		}
	}
	var add *registry.Shard
	if *newShard {
		if _, exists := base.Shard(*to); exists {
			return exitcode.Errorf(exitcode.Usage, "move plan: --new-shard: %s is already a shard of %s", *to, env.Registry)
		}
		add = newShardEntry(*to)
	} else if _, exists := base.Shard(*to); !exists {
		return exitcode.Errorf(exitcode.Usage, "move plan: %s is not a shard of %s (a split onto a new shard needs --new-shard)", *to, env.Registry)
	}
	m := registry.Move{Epoch: len(base.Moves) + 1, Buckets: registry.Ranges(expand(rs)), From: *from, To: *to}
	out, cur, err := registry.DeclareMove(src, m, add)
	if err != nil {
		return exitcode.Wrap(exitcode.Usage, err)
	}
	p := plan.Compare(base, cur, now)
	for _, line := range p.Changes {
		fmt.Fprintln(env.Stdout, line)
	}
	for _, f := range p.Findings {
		fmt.Fprintln(env.Stdout, f.String())
	}
	if p.Errors() {
		return exitcode.Errorf(exitcode.Usage, "move plan: the edit has errors (above)")
	}
	if !*write {
		fmt.Fprintf(env.Stdout, "(dry run: --write declares move %d in %s)\n", m.Epoch, env.Registry)
		return nil
	}
	if err := os.WriteFile(env.Registry, out, 0o644); err != nil {
		return exitcode.Wrap(exitcode.Permanent, err)
	}
	fmt.Fprintf(env.Stdout, "move %d declared in %s (pending)\n", m.Epoch, env.Registry)
	return nil
}

func ownsNow(s registry.Shard, b int) bool {
	for _, r := range s.Buckets {
		if r.Contains(b) {
			return true
		}
	}
	return false
}

func expand(rs []registry.Range) []int {
	var bs []int
	for _, r := range rs {
		for b := r.Lo; b <= r.Hi; b++ {
			bs = append(bs, b)
		}
	}
	return bs
}

// newShardEntry is a new shard with the secret references of the naming every shard
// of shards.yaml follows: SHARDFLOW_<ID>_{EXTRACT,REPLICATION,ADMIN}_DSN, Kubernetes
// secret shard-<id>.
func newShardEntry(id string) *registry.Shard {
	env := "SHARDFLOW_" + strings.ToUpper(id) + "_"
	ref := func(kind string) registry.SecretRef {
		return registry.SecretRef{Env: env + strings.ToUpper(kind) + "_DSN", K8sSecret: "shard-" + id, K8sKey: kind + "-dsn"}
	}
	return &registry.Shard{ID: id, State: registry.StateOnboarding, Connection: registry.Connection{
		Extract: ref("extract"), Replication: ref("replication"), Admin: ref("admin")}}
}

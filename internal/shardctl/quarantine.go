package shardctl

import (
	"context"
	"fmt"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/shopsphere/shardflow/internal/cdc"
	"github.com/shopsphere/shardflow/internal/command"
	"github.com/shopsphere/shardflow/internal/exitcode"
	"github.com/shopsphere/shardflow/internal/objstore"
	objbackend "github.com/shopsphere/shardflow/internal/objstore/backend"
)

func init() {
	register(Command{
		Name:    "quarantine",
		Summary: "CDC poison events: list the partitions stopped at one, release them (retry or skip), list skipped events",
		Usage:   "list | release --topic T --partition P --offset O --action retry|skip --reason TEXT [--by NAME] | skipped",
		Help: `A change event tokenize cdc can never land (it does not decode, carries a column
shards.yaml does not declare or declares drop, or has the wrong bucket) stops its
partition, one table of one shard, at that event: the records before it are landed, the
event is recorded under quarantine/cdc/ in the object store with its topic, partition,
offset and reason (never its values), and every other partition goes on. The alert
ShardflowCDCQuarantined names it (docs/runbooks/cdc-quarantine.md).

  list      the stopped partitions: shard, table, topic, partition, offset, since, reason
  release   end the quarantine of one partition with a recorded decision:
              --action retry  after a fix (the column declared in shards.yaml, the
                              connector corrected, a consumer that handles it): the
                              event is consumed again; still poison, it is quarantined
                              again
              --action skip   never land this one event (its change is lost to the CDC
                              path; the batch path still extracts the row's state):
                              recorded for good, every consumer drops exactly that
                              offset, the records after it are consumed
            --offset must be the quarantined one. --reason and --by (default $USER)
            are recorded with the decision under quarantine/cdc/.
  skipped   every event skipped by a decision, with who decided it, when and why

The next tokenize cdc run (the micro-batch) or, in follow mode, the running consumer
within 30s takes the partition up again. Exit codes: 0; 2 usage (not quarantined, or
another offset); 75 the object store unreachable.`,
		Run: runQuarantine,
	})
}

func runQuarantine(ctx context.Context, env Env, args []string) error {
	c := commands["quarantine"]
	if len(args) == 0 || strings.HasPrefix(args[0], "-") {
		fmt.Fprintf(env.Stderr, "usage: shardctl quarantine %s\n", c.Usage)
		if len(args) > 0 && (args[0] == "-h" || args[0] == "--help") {
			fmt.Fprintf(env.Stderr, "\n%s\n", c.Help)
			return nil
		}
		return exitcode.Errorf(exitcode.Usage, "quarantine: list, release or skipped")
	}
	sub := args[0]
	fs := newFlags(c, env)
	topic := fs.String("topic", "", "release: the quarantined partition's topic")
	partition := fs.Int("partition", -1, "release: its partition")
	offset := fs.Int64("offset", -1, "release: the quarantined offset")
	action := fs.String("action", "", "release: retry or skip")
	reason := fs.String("reason", "", "release: why (recorded)")
	by := fs.String("by", env.Vars["USER"], "release: who decides (recorded)")
	if err := command.Parse(fs, args[1:]); err != nil {
		return err
	}
	if err := noArgs(fs, "quarantine "+sub); err != nil {
		return err
	}
	_, e, err := loadEnvironment(env)
	if err != nil {
		return err
	}
	open := func() (objstore.Store, error) {
		st, err := objbackend.Open(ctx, e.ObjectStore, objbackend.CredentialsFromEnv(env.Vars))
		if err != nil {
			return nil, fmt.Errorf("quarantine: object store: %w", err)
		}
		return st, nil
	}
	switch sub {
	case "list":
		st, err := open()
		if err != nil {
			return err
		}
		qs, err := cdc.Quarantines(ctx, st)
		if err != nil {
			return err
		}
		if len(qs) == 0 {
			fmt.Fprintln(env.Stdout, "no partition is quarantined")
			return nil
		}
		w := tabwriter.NewWriter(env.Stdout, 0, 4, 2, ' ', 0)
		fmt.Fprintln(w, "SHARD\tTABLE\tTOPIC\tPARTITION\tOFFSET\tSINCE\tEXIT\tREASON")
		for _, q := range qs {
			fmt.Fprintf(w, "%s\t%s\t%s\t%d\t%d\t%s\t%d\t%s\n", q.Shard, q.Table, q.Topic, q.Partition, q.Offset, q.At.Format(time.RFC3339), q.ExitCode, q.Reason)
		}
		return w.Flush()
	case "skipped":
		st, err := open()
		if err != nil {
			return err
		}
		qs, err := cdc.Skipped(ctx, st)
		if err != nil {
			return err
		}
		if len(qs) == 0 {
			fmt.Fprintln(env.Stdout, "no event was skipped")
			return nil
		}
		w := tabwriter.NewWriter(env.Stdout, 0, 4, 2, ' ', 0)
		fmt.Fprintln(w, "SHARD\tTABLE\tTOPIC\tPARTITION\tOFFSET\tDECIDED\tBY\tWHY\tREASON")
		for _, q := range qs {
			fmt.Fprintf(w, "%s\t%s\t%s\t%d\t%d\t%s\t%s\t%s\t%s\n", q.Shard, q.Table, q.Topic, q.Partition, q.Offset,
				q.Decision.At.Format(time.RFC3339), q.Decision.By, q.Decision.Reason, q.Reason)
		}
		return w.Flush()
	case "release":
		if *topic == "" || *partition < 0 || *offset < 0 {
			return exitcode.Errorf(exitcode.Usage, "quarantine release: --topic, --partition and --offset name the quarantined event (shardctl quarantine list)")
		}
		st, err := open()
		if err != nil {
			return err
		}
		q, err := cdc.Release(ctx, st, *topic, int32(*partition), *offset, cdc.Decision{Action: *action, Reason: *reason, By: *by})
		if err != nil {
			return err
		}
		what := "consumed again by the next run"
		if q.Decision.Action == cdc.Skip {
			what = "skipped for good; the records after it are consumed by the next run"
		}
		fmt.Fprintf(env.Stdout, "released %s partition %d offset %d (shard %s, table %s) by %s: %s\n",
			q.Topic, q.Partition, q.Offset, q.Shard, q.Table, q.Decision.By, what)
		return nil
	}
	return exitcode.Errorf(exitcode.Usage, "quarantine: unknown subcommand %q (list, release or skipped)", sub)
}

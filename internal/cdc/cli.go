package cdc

import (
	"context"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"strings"
	"time"

	"github.com/shopsphere/shardflow/internal/command"
	"github.com/shopsphere/shardflow/internal/exitcode"
	"github.com/shopsphere/shardflow/internal/fence"
	"github.com/shopsphere/shardflow/internal/landing"
	"github.com/shopsphere/shardflow/internal/objstore"
	"github.com/shopsphere/shardflow/internal/registry"
)

// Deps are the seams `tokenize cdc` is built with: main passes the object store and
// Parquet writer of the batch path, so both paths land the same bytes.
type Deps struct {
	// OpenStore opens the environment's object store.
	OpenStore   func(ctx context.Context, os registry.ObjectStore) (objstore.Store, error)
	NewWriter   landing.NewFileWriter
	CodeVersion string
}

// Usage is the help text of `tokenize cdc`.
const Usage = `usage: tokenize cdc [--bounded] [--group NAME] [--instance-id ID] [--file-records N] [--flush-interval D] [--brokers HOST:PORT,...]

Consumes the Debezium change topics of every shard (<kafka.topic_prefix>.<shard>.public.<table>,
found by pattern, so a new shard's topics need no change here), and lands Parquet files
named by topic, partition and offset range, each with its manifest; the group's offsets
are committed only after a file's manifest is stored. PCI columns arrive tokenized: the
connectors' tokenize transform applies shards.yaml's policies in the Connect worker,
before Kafka (docs/pci.md). This command holds no tokenizer key; it checks that every
PCI value is in its landed form (a token, 4 or 6 digits, text with no card number).

  --bounded         stop once every partition is landed up to its end offset at the
                    start (the Airflow micro-batch task); without it, follow until
                    SIGINT/SIGTERM (the long-running deployment)
  --group           consumer group (default shardflow-tokenize-cdc)
  --instance-id     static group membership: a process restarted with the same id takes
                    its partitions back at once instead of after the session timeout
                    (45s); never run two processes with the same id. Replicas of one
                    follow deployment (same --group, each its own id) share the
                    partitions; each file's offset range is claimed in the object store
                    (cdc/claims/) before its data, so a replica that lost its partition
                    without knowing it can never land an overlapping file
  --file-records    a file never crosses an offset block of this size (default 10000)
  --flush-interval  follow mode: land a partial file once its first record waited this
                    long (default 30s)
  --brokers         override the environment's kafka.brokers

Environment: SHARDFLOW_REGISTRY, SHARDFLOW_ENV; while a move is pending, the extract DSN
variables of its shards (their fence rows judge its changes, docs/decisions/0017). Prints
one line per shard.

A poison event (it does not decode, carries a column shards.yaml does not declare or
declares drop, a PCI value not in its landed form, or has the wrong bucket) stops its
partition there: the records before it
land, the event is recorded as a quarantine under quarantine/cdc/ in the object store
(topic, partition, offset, the reason; never its values), and the other partitions and
shards go on. It does not fail the run; 'shardctl quarantine' lists and releases it.

Exit codes: 0 done (quarantines included), 2 usage, 3 or 4 a partition that failed
otherwise, 75 Kafka or the object store unreachable (retry). docs/cdc.md.
`

// Command runs `tokenize cdc`. env is the process environment (read by main).
func Command(ctx context.Context, args []string, env map[string]string, stdout, stderr io.Writer, d Deps) error {
	fs := command.NewFlagSet("tokenize cdc", stderr, func(*flag.FlagSet) { fmt.Fprint(stderr, Usage) })
	bounded := fs.Bool("bounded", false, "stop when caught up with the end offsets at the start")
	group := fs.String("group", DefaultGroup, "consumer group")
	instance := fs.String("instance-id", "", "static group membership id")
	fileRecords := fs.Int64("file-records", 10000, "offset block a file never crosses")
	flush := fs.Duration("flush-interval", 30*time.Second, "follow mode: land a partial file after this long")
	brokers := fs.String("brokers", "", "override kafka.brokers")
	verbose := fs.Bool("v", false, "debug logging")
	if err := command.Parse(fs, args); err != nil {
		return err
	}
	if err := command.NoArgs(fs); err != nil {
		return fmt.Errorf("tokenize cdc: %w", err)
	}
	if *fileRecords <= 0 || *flush <= 0 {
		return exitcode.Errorf(exitcode.Usage, "tokenize cdc: --file-records and --flush-interval must be positive")
	}
	sel, err := registry.Select(env)
	if err != nil {
		return exitcode.Wrap(exitcode.Usage, err)
	}
	reg, envName, target := sel.Registry, sel.Name, sel.Env
	bs := target.Kafka.Brokers
	if *brokers != "" {
		bs = strings.Split(*brokers, ",")
	}
	if len(bs) == 0 {
		return exitcode.Errorf(exitcode.Usage, "tokenize cdc: environment %s has no kafka.brokers", envName)
	}
	store, err := d.OpenStore(ctx, target.ObjectStore)
	if err != nil {
		return fmt.Errorf("tokenize cdc: object store: %w", err)
	}
	level := slog.LevelInfo
	if *verbose {
		level = slog.LevelDebug
	}
	log := slog.New(slog.NewTextHandler(stderr, &slog.HandlerOptions{Level: level}))
	// a shard in a pending move is judged by its own fence rows, read with its extract DSN
	fences := &fence.Views{Registry: reg, DSN: func(shard string) (string, error) {
		s, _ := reg.Shard(shard)
		if dsn := env[s.Connection.Extract.Env]; dsn != "" {
			return dsn, nil
		}
		return "", fmt.Errorf("shard %s is in a pending move: its fences are read with %s, which is not set", shard, s.Connection.Extract.Env)
	}}
	defer fences.Close()
	c := &Consumer{
		Registry: reg, Brokers: bs, TopicPrefix: target.Kafka.TopicPrefix, Group: *group, InstanceID: *instance,
		Store: store, Fences: fences, NewWriter: d.NewWriter,
		FileRecords: *fileRecords, FlushInterval: *flush, CodeVersion: d.CodeVersion, Log: log,
	}
	began := time.Now()
	sums, err := c.Run(ctx, *bounded)
	var files int
	var rows int64
	for _, s := range sums {
		status := "ok"
		switch {
		case s.Err != nil:
			status = fmt.Sprintf("FAILED (exit %d)", exitcode.Of(s.Err))
		case len(s.Quarantined) > 0:
			status = "QUARANTINED"
		case s.Paused:
			status = "paused (shardctl shard resume)"
		}
		skipped := ""
		if s.SkippedByDecision > 0 {
			skipped = fmt.Sprintf(", %d skipped by decision", s.SkippedByDecision)
		}
		fmt.Fprintf(stdout, "shard %s: %d files (%d adopted), %d records, %d rows, %d unowned%s: %s\n",
			s.Shard, s.Files, s.Adopted, s.Records, s.Rows, s.Unowned, skipped, status)
		for _, q := range s.Quarantined {
			fmt.Fprintf(stdout, "  quarantined: table %s, %s partition %d stops at offset %d (exit %d): %s; see `shardctl quarantine list`\n",
				q.Table, q.Topic, q.Partition, q.Offset, q.ExitCode, q.Reason)
		}
		files += s.Files
		rows += s.Rows
	}
	fmt.Fprintf(stdout, "cdc: %d shards, %d files, %d rows in %s\n", len(sums), files, rows, time.Since(began).Round(time.Millisecond))
	return err
}

package shardctl

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"

	"github.com/shopsphere/shardflow/internal/capacity"
	"github.com/shopsphere/shardflow/internal/command"
	"github.com/shopsphere/shardflow/internal/exitcode"
	"github.com/shopsphere/shardflow/internal/genfile"
)

func init() {
	register(Command{
		Name:    "capacity",
		Summary: "size Kafka, Connect, tokenize cdc, Airflow, Snowflake and S3 for N shards",
		Usage:   "[--shards 16,64] [--rates test/bench/rates.json] [--format text|markdown] [--write FILE | --check FILE]",
		Help: `Computes the capacity plan of the fleet at each shard count of --shards (default the
brief's 16 now and 64 within a year): Kafka topics, partitions, brokers and storage
(MSK), Kafka Connect connectors, tasks and workers, tokenize cdc replicas, Airflow tasks,
pods per hour and worker slots, the Snowflake load warehouse's size and credits per day,
and S3 volume and cost per tier (docs/design.md, internal/capacity).

It reads shards.yaml ($SHARDFLOW_REGISTRY), re-derived with each shard count as
'shardctl init --shards N' does, and sizes what the generators render for its
production environment (one Debezium connector per shard, one topic per shard and
table, the hourly DAG's tasks); the brief's load figures; the per-core rates this
repository measured (--rates, refreshed by 'make bench'); and vendor figures (MSK,
Kafka, Debezium, Snowflake and S3 documentation). Every line prints the inputs it was
computed from with their kind of source (brief, measured here, vendor doc, shards.yaml,
generated, assumption), and the inputs table names each source in full. Snowflake is
not reachable here: its figures are estimates from the DuckDB stand-in's load rate.

A rate the plan needs that the rates file lacks is a usage error (exit 2) naming the
figure and the benchmark that measures it.

--write FILE rewrites the block between <!-- capacity:begin --> and
<!-- capacity:end --> in FILE with the markdown plan (make design-doc); --check FILE
exits 3 with the diff when that block differs from it (make lint-design-doc).

  shardctl capacity
  shardctl capacity --shards 16,32,64 --format markdown
  shardctl capacity --write docs/design.md`,
		Run: runCapacity,
	})
}

func runCapacity(_ context.Context, env Env, args []string) error {
	c := commands["capacity"]
	fs := newFlags(c, env)
	shardList := fs.String("shards", "16,64", "shard counts, comma-separated")
	ratesPath := fs.String("rates", capacity.DefaultRatesFile, "the measured rates file")
	format := fs.String("format", "text", "output format: text or markdown")
	write := fs.String("write", "", "rewrite the capacity block of this markdown file")
	check := fs.String("check", "", "exit 3 if the capacity block of this markdown file is stale")
	if err := command.Parse(fs, args); err != nil {
		return err
	}
	if err := noArgs(fs, "capacity"); err != nil {
		return err
	}
	var shards []int
	for _, s := range strings.Split(*shardList, ",") {
		n, err := strconv.Atoi(strings.TrimSpace(s))
		if err != nil || n < 1 {
			return exitcode.Errorf(exitcode.Usage, "capacity: --shards %q: want shard counts like 16,64", *shardList)
		}
		shards = append(shards, n)
	}
	if *format != "text" && *format != "markdown" {
		return exitcode.Errorf(exitcode.Usage, "capacity: --format %q: want text or markdown", *format)
	}
	if *write != "" && *check != "" {
		return exitcode.Errorf(exitcode.Usage, "capacity: give --write or --check, not both")
	}
	base, err := os.ReadFile(env.Registry)
	if err != nil {
		return exitcode.Wrap(exitcode.Usage, fmt.Errorf("capacity: read registry: %w", err))
	}
	rates, err := capacity.LoadRates(*ratesPath)
	if err != nil {
		return exitcode.Wrap(exitcode.Usage, fmt.Errorf("capacity: %w", err))
	}
	plan, err := capacity.Compute(base, rates, shards)
	if errors.Is(err, capacity.ErrMissingRate) {
		return exitcode.Wrap(exitcode.Usage, fmt.Errorf("capacity: %s: %w", *ratesPath, err))
	}
	if err != nil {
		return exitcode.Wrap(exitcode.Usage, fmt.Errorf("capacity: %w", err))
	}
	doc := *write + *check
	if doc == "" {
		if *format == "markdown" {
			return plan.Markdown(env.Stdout)
		}
		return plan.Text(env.Stdout)
	}
	var md bytes.Buffer
	if err := plan.Markdown(&md); err != nil {
		return err
	}
	old, err := os.ReadFile(doc)
	if err != nil {
		return exitcode.Wrap(exitcode.Usage, fmt.Errorf("capacity: %w", err))
	}
	text, err := capacity.ReplaceBlock(old, md.Bytes())
	if err != nil {
		return exitcode.Wrap(exitcode.Usage, fmt.Errorf("capacity: %s: %w", doc, err))
	}
	dir, name := filepath.Split(doc)
	set := genfile.Set{Name: "capacity block", Dir: filepath.Clean(dir + "."), Files: []genfile.File{{Path: name, Data: text}}}
	if *check != "" {
		stale, err := set.Diff()
		if err != nil {
			return fmt.Errorf("capacity: %w", err)
		}
		if len(stale) > 0 {
			fmt.Fprint(env.Stdout, genfile.Unified(filepath.ToSlash(set.Dir), stale[0]))
			return exitcode.Errorf(exitcode.CheckFail, "capacity: %s: the capacity block is out of date with `shardctl capacity`; run `make design-doc` and commit", doc)
		}
		fmt.Fprintf(env.Stdout, "%s: capacity block up to date (%s, %s)\n", doc, env.Registry, *ratesPath)
		return nil
	}
	changed, err := set.Write()
	if err != nil {
		return fmt.Errorf("capacity: %w", err)
	}
	fmt.Fprintf(env.Stdout, "%s: capacity block %s\n", doc, map[bool]string{true: "rewritten", false: "unchanged"}[len(changed) > 0])
	return nil
}

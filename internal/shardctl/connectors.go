package shardctl

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/shopsphere/shardflow/internal/cdc"
	"github.com/shopsphere/shardflow/internal/cdc/health"
	"github.com/shopsphere/shardflow/internal/command"
	"github.com/shopsphere/shardflow/internal/connector"
	"github.com/shopsphere/shardflow/internal/exitcode"
	"github.com/shopsphere/shardflow/internal/genfile"
	"github.com/shopsphere/shardflow/internal/registry"
)

func init() {
	register(Command{
		Name:    "connectors",
		Summary: "Debezium connectors per shard: plan|apply|status|restart|render|secrets",
		Usage:   "plan|apply|status|restart|render|secrets [flags]",
		Help: `One Debezium PostgreSQL connector per shard that is not retired, rendered from
shards.yaml (docs/cdc.md): pgoutput, its own slot and the publication shardflow_cdc,
heartbeats, the signal table for incremental snapshots, drop-policy columns excluded,
the tokenize transform on the token, last4, bin and redact columns (PCI values are
tokenized in the worker, before Kafka: docs/pci.md), topics
<kafka.topic_prefix>.<shard>.public.<table>. Connect is the environment's
kafka.connect_url (--connect-url overrides).

  plan     print, per connector, what apply would change (create, update with the
           differing keys, unchanged; shardflow-* connectors of no managed shard are
           listed, never deleted). Changes nothing.
  apply    plan, then PUT the config of every connector to create or update; a
           second apply changes nothing. Waits until the applied connectors run
           (--wait, default 2m; 0 does not wait).
  status   per shard: connector and task state, replication slot (active, wal_status,
           retained WAL, confirmed_flush lag), age of the last Debezium heartbeat,
           and the lag of the tokenize consumer group (records, age of the oldest).
           Reads each shard through its replication DSN (the variable
           shards[].connection.replication.env names), Kafka at kafka.brokers
           (--brokers overrides). Exit 3 naming the shards when a connector or
           task is FAILED or missing, a slot is missing or lost, or the heartbeat
           or the oldest unconsumed change is older than sla.cdc_freshness
           (--sla overrides); 75 when only something could not be read.
  restart  restart the connector of --shard and its failed tasks.
  render   write docker/connect/connectors/<shard>.json (--dir) for --env
           (default production); --check only compares and exits 3 when a file
           differs.
  secrets  write --dir/<shard>.properties (mode 0600) from each shard's replication
           DSN variable: the file the worker's FileConfigProvider resolves the
           connection references of a connector from (the worker's secrets/ dir);
           and the tokenizer key, from tokenizer.key.env, into --tokenizer-dir
           (default tokenizer/ beside --dir), the file named by tokenizer.key.k8s_key
           that the worker's DirectoryConfigProvider resolves the transform's key from.
           For a local worker: in production both are Kubernetes secrets mounted into
           the Connect pods (docker/connect/strimzi/kafka-connect.yaml).

Exit codes: 0 done, 2 usage, 3 unhealthy (status) or stale configs (render --check), 75 Connect,
Kafka or a shard unreachable.`,
		Run: runConnectors,
	})
}

func runConnectors(ctx context.Context, env Env, args []string) error {
	c := commands["connectors"]
	if len(args) == 0 || strings.HasPrefix(args[0], "-") {
		if len(args) > 0 && (args[0] == "-h" || args[0] == "--help") {
			fmt.Fprintf(env.Stdout, "usage: shardctl connectors %s\n\n%s\n", c.Usage, c.Help)
			return nil
		}
		return exitcode.Errorf(exitcode.Usage, "connectors: want a subcommand: plan, apply, status, restart, render or secrets")
	}
	sub := args[0]
	fs := newFlags(c, env)
	connectURL := fs.String("connect-url", "", "Kafka Connect REST API (default: the environment's kafka.connect_url)")
	brokers := fs.String("brokers", "", "status: Kafka brokers, comma-separated (default: the environment's kafka.brokers)")
	group := fs.String("group", cdc.DefaultGroup, "status: the tokenize consumer group")
	sla := fs.Duration("sla", 0, "status: freshness limit (default: sla.cdc_freshness)")
	wait := fs.Duration("wait", 2*time.Minute, "apply: wait this long for the applied connectors to run (0: do not wait)")
	shard := fs.String("shard", "", "restart: the shard whose connector to restart")
	dir := fs.String("dir", "", "render: output directory (default docker/connect/connectors); secrets: the worker's secrets directory")
	tokDir := fs.String("tokenizer-dir", "", "secrets: the worker's tokenizer key directory (default tokenizer/ beside --dir)")
	envName := fs.String("env", "production", "render: the environment whose topic prefix the committed configs use")
	check := fs.Bool("check", false, "render: only compare with --dir; exit 3 when it differs")
	if err := command.Parse(fs, args[1:]); err != nil {
		return err
	}
	if err := noArgs(fs, "connectors "+sub); err != nil {
		return err
	}
	reg, err := loadRegistry(env)
	if err != nil {
		return err
	}
	switch sub {
	case "render":
		return connectorsRender(env, reg, *envName, *dir, *check)
	case "secrets":
		return connectorsSecrets(env, reg, *dir, *tokDir)
	}
	target, err := reg.Environment(env.Name)
	if err != nil {
		return exitcode.Wrap(exitcode.Usage, err)
	}
	url := target.Kafka.ConnectURL
	if *connectURL != "" {
		url = *connectURL
	}
	if url == "" {
		return exitcode.Errorf(exitcode.Usage, "connectors: environment %s has no kafka.connect_url (or pass --connect-url)", env.Name)
	}
	client := connector.NewClient(url, nil)
	switch sub {
	case "plan", "apply":
		return connectorsPlanApply(ctx, env, reg, target, client, url, sub == "apply", *wait)
	case "status":
		return cdcStatus(ctx, env, reg, target, client, *brokers, *group, *sla)
	case "restart":
		if *shard == "" {
			return exitcode.Errorf(exitcode.Usage, "connectors restart: --shard is required")
		}
		if _, ok := reg.Shard(*shard); !ok {
			return exitcode.Errorf(exitcode.Usage, "connectors restart: shard %q is not in %s", *shard, env.Registry)
		}
		name := connector.Name(*shard)
		if err := client.Restart(ctx, name); err != nil {
			return connectErr(fmt.Errorf("connectors restart %s: %w", name, err))
		}
		fmt.Fprintf(env.Stdout, "%s: restart requested (connector and failed tasks); `shardctl connectors status` shows the result\n", name)
		return nil
	}
	return exitcode.Errorf(exitcode.Usage, "connectors: unknown subcommand %q (plan, apply, status, restart, render, secrets)", sub)
}

// cdcStatus prints the CDC health of every shard (docs/cdc.md): connector and task
// state, slot WAL and lag, heartbeat, consumer lag. brokers overrides the environment's
// kafka.brokers (comma-separated); sla overrides sla.cdc_freshness when positive.
func cdcStatus(ctx context.Context, env Env, reg *registry.Registry, target *registry.Environment, client *connector.Client, brokers, group string, sla time.Duration) error {
	bs := target.Kafka.Brokers
	if brokers != "" {
		bs = strings.Split(brokers, ",")
	}
	if len(bs) == 0 {
		return exitcode.Errorf(exitcode.Usage, "connectors status: environment %s has no kafka.brokers (or pass --brokers)", env.Name)
	}
	dsns := map[string]string{}
	for _, s := range reg.Shards {
		if v := env.Vars[s.Connection.Replication.Env]; v != "" {
			dsns[s.ID] = v
		}
	}
	chk := &health.Checker{Registry: reg, Connect: client, Brokers: bs, TopicPrefix: target.Kafka.TopicPrefix,
		Group: group, DSNs: dsns, SLA: sla}
	rep := chk.Check(ctx)
	rep.Write(env.Stdout)
	return rep.Err()
}

func connectorsPlanApply(ctx context.Context, env Env, reg *registry.Registry, target *registry.Environment,
	client *connector.Client, url string, apply bool, wait time.Duration) error {
	desired, err := connector.RenderAll(reg, target.Kafka.TopicPrefix)
	if err != nil {
		return exitcode.Wrap(exitcode.Usage, err)
	}
	plan, err := connector.Plan(ctx, client, desired)
	if err != nil {
		return connectErr(err)
	}
	fmt.Fprintf(env.Stdout, "connectors of %s on %s:\n", env.Registry, url)
	connector.WritePlan(env.Stdout, plan)
	if !apply {
		fmt.Fprintf(env.Stdout, "plan: %s\n", planCounts(plan))
		return nil
	}
	if !connector.Pending(plan) {
		fmt.Fprintln(env.Stdout, "apply: nothing to change")
		return nil
	}
	if err := connector.Apply(ctx, client, plan); err != nil {
		return connectErr(err)
	}
	fmt.Fprintf(env.Stdout, "apply: %s\n", planCounts(plan))
	if wait <= 0 {
		return nil
	}
	deadline := time.Now().Add(wait)
	for _, ch := range plan {
		if ch.Action != connector.Create && ch.Action != connector.Update {
			continue
		}
		for {
			st, err := client.Status(ctx, ch.Name)
			if err == nil && st.Running() {
				fmt.Fprintf(env.Stdout, "  %s: %s\n", ch.Name, st.Summary())
				break
			}
			if err == nil && (st.Connector.State == "FAILED" || strings.Contains(st.Summary(), ":FAILED")) {
				return exitcode.Errorf(exitcode.Permanent, "connectors apply: %s is %s (its trace: GET %s/connectors/%s/status)", ch.Name, st.Summary(), url, ch.Name)
			}
			if time.Now().After(deadline) {
				state := "unknown"
				if err == nil {
					state = st.Summary()
				}
				return exitcode.Errorf(exitcode.Retryable, "connectors apply: %s not running after %s (%s)", ch.Name, wait, state)
			}
			select {
			case <-ctx.Done():
				return exitcode.Wrap(exitcode.Retryable, ctx.Err())
			case <-time.After(500 * time.Millisecond):
			}
		}
	}
	return nil
}

func planCounts(plan []connector.Change) string {
	n := map[connector.Action]int{}
	for _, ch := range plan {
		n[ch.Action]++
	}
	s := fmt.Sprintf("%d to create, %d to update, %d unchanged", n[connector.Create], n[connector.Update], n[connector.Unchanged])
	if n[connector.Unmanaged] > 0 {
		s += fmt.Sprintf(", %d unmanaged", n[connector.Unmanaged])
	}
	return s
}

// connectErr maps a Connect REST error to an exit code: a rejected config (4xx) is
// permanent, an unreachable or busy worker (network, 409, 5xx) is retryable.
func connectErr(err error) error {
	var api *connector.APIError
	if errors.As(err, &api) && api.Status/100 == 4 && api.Status != http.StatusConflict {
		return exitcode.Wrap(exitcode.Permanent, err)
	}
	return exitcode.Wrap(exitcode.Retryable, err)
}

func connectorsRender(env Env, reg *registry.Registry, envName, dir string, check bool) error {
	if dir == "" {
		dir = filepath.Join("docker", "connect", "connectors")
	}
	target, err := reg.Environment(envName)
	if err != nil {
		return exitcode.Wrap(exitcode.Usage, err)
	}
	set, err := connector.Files(reg, target.Kafka.TopicPrefix, dir)
	if err != nil {
		return exitcode.Wrap(exitcode.Usage, err)
	}
	if check {
		stale, err := set.Diff()
		if err != nil {
			return fmt.Errorf("connectors render: %w", err)
		}
		if len(stale) > 0 {
			return exitcode.Errorf(exitcode.CheckFail, "connectors render: %s: %v differ from what %s renders; run `shardctl connectors render --dir %s` and commit", dir, genfile.Paths(stale), env.Registry, dir)
		}
		fmt.Fprintf(env.Stdout, "%s: %d connector configs up to date with %s\n", dir, len(set.Files), env.Registry)
		return nil
	}
	changed, err := set.Write()
	if err != nil {
		return fmt.Errorf("connectors render: %w", err)
	}
	fmt.Fprintf(env.Stdout, "%s: %d connector configs, %d changed\n", dir, len(set.Files), len(changed))
	return nil
}

func connectorsSecrets(env Env, reg *registry.Registry, dir, tokDir string) error {
	if dir == "" {
		return exitcode.Errorf(exitcode.Usage, "connectors secrets: --dir is required (the Connect worker's secrets directory)")
	}
	if tokDir == "" {
		tokDir = filepath.Join(filepath.Dir(filepath.Clean(dir)), connector.TokenizerDir)
	}
	key := env.Vars[reg.Tokenizer.Key.Env]
	if key == "" {
		return exitcode.Errorf(exitcode.Usage, "connectors secrets: $%s is not set (tokenizer.key.env: the key the connectors' tokenize transform uses)", reg.Tokenizer.Key.Env)
	}
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return fmt.Errorf("connectors secrets: %w", err)
	}
	n := 0
	for _, s := range reg.Shards {
		if !connector.Managed(s) {
			continue
		}
		name := s.Connection.Replication.Env
		dsn := env.Vars[name]
		if dsn == "" {
			return exitcode.Errorf(exitcode.Usage, "connectors secrets: shard %s: $%s is not set (shards[].connection.replication.env)", s.ID, name)
		}
		b, err := connector.SecretsFile(s.ID, dsn)
		if err != nil {
			return exitcode.Wrap(exitcode.Usage, err)
		}
		p := filepath.Join(dir, s.ID+".properties")
		if err := os.WriteFile(p, b, 0o600); err != nil {
			return fmt.Errorf("connectors secrets: %w", err)
		}
		if err := os.Chmod(p, 0o600); err != nil {
			return fmt.Errorf("connectors secrets: %w", err)
		}
		n++
	}
	fmt.Fprintf(env.Stdout, "%s: %d shard connection files (mode 0600)\n", dir, n)
	p, err := connector.WriteTokenizerKey(tokDir, reg.Tokenizer, key)
	if err != nil {
		return fmt.Errorf("connectors secrets: %w", err)
	}
	fmt.Fprintf(env.Stdout, "%s: the tokenizer key of key id %s (mode 0600)\n", p, reg.Tokenizer.KeyID)
	return nil
}

package shardctl

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"sort"
	"strings"
	"time"

	"github.com/shopsphere/shardflow/internal/airflow"
	"github.com/shopsphere/shardflow/internal/cdc"
	"github.com/shopsphere/shardflow/internal/command"
	"github.com/shopsphere/shardflow/internal/connector"
	"github.com/shopsphere/shardflow/internal/dagen"
	"github.com/shopsphere/shardflow/internal/exitcode"
	objbackend "github.com/shopsphere/shardflow/internal/objstore/backend"
	"github.com/shopsphere/shardflow/internal/registry"
)

func init() {
	register(Command{
		Name:    "status",
		Summary: "per-shard health: latest Airflow runs' task states and CDC health",
		Usage:   "[--only holds|airflow|cdc] [--dag hourly|finance_daily|backfill|cdc_microbatch] [--runs N]" + airflowUsage,
		Help: `Three sections, each read on its own (one that cannot be reached does not hide the others):

  holds    the shards paused by an operator (shardctl shard pause) and the CDC
           partitions quarantined at a poison event (shardctl quarantine), from the
           object store;
  airflow  the latest runs of the DAG from the Airflow REST API: per run its state and
           window, then one line per shard (the states of its task group's tasks and the
           ones that failed), then the fleet-wide tasks (dbt, cross-shard dq);
  cdc      per shard, what 'shardctl connectors status' reports: connector and task
           state, replication slot retained WAL and confirmed_flush lag, heartbeat age,
           the tokenize group's lag and the age of its oldest unconsumed change.

Exit codes: 3 when a shard is unhealthy (CDC: a FAILED or missing connector or task, a
lost slot, older than sla.cdc_freshness), else 75 when a section could not be read,
else 0.` + airflowHelp,
		Run: runStatus,
	})
}

const airflowUsage = " [--airflow-url URL]"

const airflowHelp = `

Airflow: environments.<SHARDFLOW_ENV>.airflow.url (or --airflow-url). Authentication:
the token in the variable named by airflow.token.env (SHARDFLOW_AIRFLOW_TOKEN), or
SHARDFLOW_AIRFLOW_USERNAME and SHARDFLOW_AIRFLOW_PASSWORD exchanged for one at
POST /auth/token. Exit 75 when Airflow cannot be reached.`

// airflowFlags adds --airflow-url to fs; call open after parsing.
type airflowFlags struct {
	url string
}

func (a *airflowFlags) add(fs *flag.FlagSet) {
	fs.StringVar(&a.url, "airflow-url", "", "Airflow API base URL (default environments.<env>.airflow.url)")
}

// open loads the registry and returns it with a client of the environment's Airflow.
func (a *airflowFlags) open(env Env) (*registry.Registry, *airflow.Client, error) {
	r, e, err := loadEnvironment(env)
	if err != nil {
		return nil, nil, err
	}
	c, err := a.client(env, e)
	if err != nil {
		return nil, nil, err
	}
	return r, c, nil
}

// client is the Airflow REST client of environment e: its URL (or --airflow-url), its
// token variable, or SHARDFLOW_AIRFLOW_USERNAME/PASSWORD for /auth/token.
func (a *airflowFlags) client(env Env, e *registry.Environment) (*airflow.Client, error) {
	cfg := airflow.Config{URL: e.Airflow.URL, Username: env.Vars["SHARDFLOW_AIRFLOW_USERNAME"], Password: env.Vars["SHARDFLOW_AIRFLOW_PASSWORD"]}
	if a.url != "" {
		cfg.URL = a.url
	}
	if e.Airflow.Token.Env != "" {
		cfg.Token = env.Vars[e.Airflow.Token.Env]
	}
	if cfg.URL == "" {
		return nil, exitcode.Errorf(exitcode.Usage, "environments.%s.airflow.url is not set (or give --airflow-url)", env.Name)
	}
	c, err := airflow.New(cfg)
	if err != nil {
		return nil, exitcode.Wrap(exitcode.Usage, fmt.Errorf("%w (token variable %s)", err, e.Airflow.Token.Env))
	}
	return c, nil
}

// apiErr maps a client error to an exit code: unreachable or a server error is
// retryable (75), a refused request is permanent (1).
func apiErr(op string, err error) error {
	var ae *airflow.APIError
	if errors.As(err, &ae) && !ae.Retryable() {
		return fmt.Errorf("%s: %w", op, err)
	}
	return exitcode.Wrap(exitcode.Retryable, fmt.Errorf("%s: %w", op, err))
}

// dagKind checks a --dag value.
func dagKind(kind string) error {
	for _, k := range dagen.Kinds {
		if k == kind {
			return nil
		}
	}
	return exitcode.Errorf(exitcode.Usage, "--dag %q: one of %s", kind, strings.Join(dagen.Kinds, ", "))
}

func runStatus(ctx context.Context, env Env, args []string) error {
	c := commands["status"]
	fs := newFlags(c, env)
	var af airflowFlags
	af.add(fs)
	kind := fs.String("dag", dagen.Hourly, "which DAG")
	n := fs.Int("runs", 3, "how many of the latest runs")
	only := fs.String("only", "", "one section: holds, airflow or cdc")
	if err := command.Parse(fs, args); err != nil {
		return err
	}
	if err := dagKind(*kind); err != nil {
		return err
	}
	if *only != "" && *only != "holds" && *only != "airflow" && *only != "cdc" {
		return exitcode.Errorf(exitcode.Usage, "status: --only holds, airflow or cdc, not %q", *only)
	}
	type section struct {
		name string
		run  func() error
	}
	var sections []section
	if *only == "" || *only == "holds" {
		sections = append(sections, section{"holds", func() error { return statusHolds(ctx, env) }})
	}
	if *only == "" || *only == "airflow" {
		sections = append(sections, section{"airflow", func() error { return airflowStatus(ctx, env, af, *kind, *n) }})
	}
	if *only == "" || *only == "cdc" {
		sections = append(sections, section{"cdc", func() error { return statusCDC(ctx, env) }})
	}
	var errs []error
	var bad []string
	for _, sec := range sections {
		if len(sections) > 1 {
			fmt.Fprintf(env.Stdout, "== %s\n", sec.name)
		}
		if err := sec.run(); err != nil {
			if sec.name != "cdc" || exitcode.Of(err) == exitcode.Usage {
				fmt.Fprintf(env.Stdout, "%s: %v\n", sec.name, err) // the cdc report already says what is wrong
			}
			errs = append(errs, err)
			bad = append(bad, fmt.Sprintf("%s exit %d", sec.name, exitcode.Of(err)))
		}
		if len(sections) > 1 {
			fmt.Fprintln(env.Stdout)
		}
	}
	if len(errs) == 0 {
		return nil
	}
	return exitcode.Errorf(exitcode.Worst(errs...), "status: %s", strings.Join(bad, ", "))
}

// statusHolds is the holds section of status: the paused shards and the quarantined CDC
// partitions, from the environment's object store.
func statusHolds(ctx context.Context, env Env) error {
	_, e, err := loadEnvironment(env)
	if err != nil {
		return err
	}
	store, err := objbackend.Open(ctx, e.ObjectStore, objbackend.CredentialsFromEnv(env.Vars))
	if err != nil {
		return fmt.Errorf("object store: %w", err)
	}
	return writeHolds(ctx, env.Stdout, store)
}

// statusCDC is the cdc section of status, with the environment's defaults.
func statusCDC(ctx context.Context, env Env) error {
	r, target, err := loadEnvironment(env)
	if err != nil {
		return err
	}
	if target.Kafka.ConnectURL == "" {
		return exitcode.Errorf(exitcode.Usage, "environment %s has no kafka.connect_url", env.Name)
	}
	return cdcStatus(ctx, env, r, target, connector.NewClient(target.Kafka.ConnectURL, nil), "", cdc.DefaultGroup, 0)
}

// airflowStatus is the airflow section of status.
func airflowStatus(ctx context.Context, env Env, af airflowFlags, kind string, n int) error {
	r, cl, err := af.open(env)
	if err != nil {
		return err
	}
	dagID := dagen.DAGID(r.Fleet, kind)
	runs, err := cl.LatestRuns(ctx, dagID, n)
	if err != nil {
		return apiErr("status", err)
	}
	if len(runs) == 0 {
		fmt.Fprintf(env.Stdout, "%s: no runs\n", dagID)
		return nil
	}
	for _, run := range runs {
		tis, err := cl.TaskInstances(ctx, dagID, run.RunID)
		if err != nil {
			return apiErr("status", err)
		}
		window := ""
		if run.DataIntervalStart != nil && run.DataIntervalEnd != nil && !run.DataIntervalStart.Equal(*run.DataIntervalEnd) {
			window = fmt.Sprintf(" window %s..%s", run.DataIntervalStart.UTC().Format(time.RFC3339), run.DataIntervalEnd.UTC().Format(time.RFC3339))
		}
		fmt.Fprintf(env.Stdout, "%s run %s: %s%s\n", dagID, run.RunID, run.State, window)
		for _, line := range summarize(tis) {
			fmt.Fprintf(env.Stdout, "  %s\n", line)
		}
	}
	return nil
}

// summarize groups task instances by shard (task group) and prints their states, the
// shards in id order, then the fleet-wide tasks.
func summarize(tis []airflow.TaskInstance) []string {
	groups := map[string][]airflow.TaskInstance{}
	for _, ti := range tis {
		groups[dagen.GroupOf(ti.TaskID)] = append(groups[dagen.GroupOf(ti.TaskID)], ti)
	}
	ids := make([]string, 0, len(groups))
	for g := range groups {
		if g != "" {
			ids = append(ids, g)
		}
	}
	sort.Strings(ids)
	var out []string
	for _, g := range ids {
		out = append(out, fmt.Sprintf("%-8s %s", g, states(groups[g], g+".")))
	}
	if fleet := groups[""]; len(fleet) > 0 {
		out = append(out, fmt.Sprintf("%-8s %s", "(fleet)", states(fleet, "")))
	}
	return out
}

func states(tis []airflow.TaskInstance, prefix string) string {
	count := map[string]int{}
	var failed []string
	for _, ti := range tis {
		st := ti.State
		if st == "" {
			st = "none"
		}
		count[st]++
		if st == airflow.StateFailed {
			failed = append(failed, strings.TrimPrefix(ti.TaskID, prefix))
		}
	}
	names := make([]string, 0, len(count))
	for s := range count {
		names = append(names, s)
	}
	sort.Strings(names)
	parts := make([]string, len(names))
	for i, s := range names {
		parts[i] = fmt.Sprintf("%s %d", s, count[s])
	}
	line := strings.Join(parts, ", ")
	if len(failed) > 0 {
		sort.Strings(failed)
		line += "; failed: " + strings.Join(failed, " ")
	}
	return line
}

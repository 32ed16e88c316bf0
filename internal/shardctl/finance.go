package shardctl

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"

	"github.com/shopsphere/shardflow/internal/buildinfo"
	"github.com/shopsphere/shardflow/internal/command"
	"github.com/shopsphere/shardflow/internal/exitcode"
	"github.com/shopsphere/shardflow/internal/registry"
)

func init() {
	register(Command{
		Name:    "finance",
		Summary: "verify, replay and list pinned finance runs (dbt)",
		Usage:   "verify [--run RUN] | replay --run RUN [--as NEW] | runs   [--restore SCHEMA] [--dbt BIN] [--project DIR]",
		Help: `Finance runs are pinned (docs/decisions/0012): each records, per shard and table, the
raw._load_history high-water mark it read up to (files, rows, checksum), the registry
epoch and the code version, and computes its numbers only from rows within those marks.

  verify [--run RUN]   prove a run reproducible: its pinned inputs are unchanged in the
                       warehouse and its daily numbers recomputed now from them equal the
                       stored ones (default: the latest run). Exit 3 when not, naming the
                       shard and table whose input changed or how many rows differ.
  replay --run RUN     recompute RUN on exactly its recorded inputs as a new run (--as,
                       default RUN-replay-N; its code_version is the revision shardctl
                       was built from, as the task image's dbt is), published nowhere,
                       then verify the new run and compare its numbers with RUN's (exit 3
                       when they differ). Use it after a shard split or a code change.
  runs                 list the recorded runs.

--restore SCHEMA reads the run's inputs from a restore schema instead of raw (verify,
replay): a run whose inputs were purged past the hot period, restored first with
'shardctl retention restore --run RUN --schema SCHEMA' (docs/retention.md). The staging
views are built in SCHEMA, over it; raw and its views are not touched.

It runs the dbt project (--project, default ./dbt) with the dbt executable given by
--dbt (default $SHARDFLOW_DBT_BIN, else dbt on PATH) against the environment's
warehouse: DuckDB at environments.<env>.warehouse.path (SHARDFLOW_DUCKDB_PATH, which
the dbt profile reads, overrides it), or Snowflake with the dbt profile's SNOWFLAKE_*
variables. dbt's own output goes to stderr with --verbose. Exit codes: 0 reproducible;
3 not reproducible; 2 usage; 1 dbt failed otherwise.`,
		Run: runFinance,
	})
}

var errNotReproducible = errors.New("finance run not reproducible")

func runFinance(ctx context.Context, env Env, args []string) error {
	c := commands["finance"]
	if len(args) == 0 || strings.HasPrefix(args[0], "-") {
		fmt.Fprintf(env.Stderr, "usage: shardctl finance %s\n", c.Usage)
		if len(args) > 0 && (args[0] == "-h" || args[0] == "--help") {
			return nil
		}
		return exitcode.Errorf(exitcode.Usage, "finance: verify, replay or runs")
	}
	sub := args[0]
	fs := newFlags(c, env)
	run := fs.String("run", "", "finance run id")
	as := fs.String("as", "", "replay: id of the new run (default RUN-replay-<seq>)")
	bin := fs.String("dbt", env.Vars["SHARDFLOW_DBT_BIN"], "dbt executable (default: dbt on PATH)")
	project := fs.String("project", "dbt", "dbt project directory")
	verbose := fs.Bool("verbose", false, "copy dbt's output to stderr")
	restore := fs.String("restore", "", "verify, replay: read the inputs from this restore schema instead of raw")
	if err := command.Parse(fs, args[1:]); err != nil {
		return err
	}
	if err := noArgs(fs, "finance "+sub); err != nil {
		return err
	}
	_, target, err := loadEnvironment(env)
	if err != nil {
		return err
	}
	d, cleanup, err := newDBT(*bin, *project, target.Warehouse, env, *verbose)
	if err != nil {
		return err
	}
	defer cleanup()
	if *restore != "" {
		if sub == "runs" {
			return exitcode.Errorf(exitcode.Usage, "finance runs: --restore is for verify and replay")
		}
		if !registry.IsIdentifier(*restore) || *restore == "raw" {
			return exitcode.Errorf(exitcode.Usage, "finance %s: --restore %q is not a restore schema (lowercase letters, digits and _; not raw)", sub, *restore)
		}
		d.rawSchema = *restore
		if _, err := d.run(ctx, "run", "--select", "path:models/staging", "--vars", d.vars("")); err != nil {
			return fmt.Errorf("finance %s: build the staging views over %s: %w", sub, *restore, err)
		}
	}
	switch sub {
	case "verify":
		line, err := d.verify(ctx, *run)
		if line != "" {
			fmt.Fprintln(env.Stdout, line)
		}
		return err
	case "replay":
		if *run == "" {
			return exitcode.Errorf(exitcode.Usage, "finance replay: --run is required")
		}
		return d.replay(ctx, env.Stdout, *run, *as)
	case "runs":
		out, err := d.run(ctx, "show", "--limit", "1000", "--output", "text", "--inline",
			"select run_id, run_seq, code_version, registry_epoch,"+
				" coalesce(cast(day_from as varchar), 'all') || '..' || coalesce(cast(day_to as varchar), 'all') as days,"+
				" coalesce(replay_of, '') as replay_of from {{ ref('dim_finance_runs') }} order by run_seq")
		if err != nil {
			return err
		}
		fmt.Fprint(env.Stdout, showTable(out))
		return nil
	}
	return exitcode.Errorf(exitcode.Usage, "finance: unknown subcommand %q (verify, replay, runs)", sub)
}

// dbt runs the project's dbt against one warehouse.
type dbt struct {
	bin, project string
	rawSchema    string // the sources' schema when not raw: a restore (--restore)
	work         string // target and log path of this invocation
	env          []string
	stderr       io.Writer // dbt's output, when verbose
}

// newDBT returns a dbt for the warehouse and a cleanup that removes its work directory
// (a directory of its own, so concurrent dbt runs never share a target path).
func newDBT(bin, project string, wh registry.Warehouse, env Env, verbose bool) (*dbt, func(), error) {
	d, err := configureDBT(bin, project, wh, env, verbose)
	if err != nil {
		return nil, nil, err
	}
	d.work, err = os.MkdirTemp("", "shardctl-dbt-")
	if err != nil {
		return nil, nil, err
	}
	return d, func() { os.RemoveAll(d.work) }, nil
}

func configureDBT(bin, project string, wh registry.Warehouse, env Env, verbose bool) (*dbt, error) {
	if bin == "" {
		bin = "dbt"
	}
	path, err := exec.LookPath(bin)
	if err != nil {
		return nil, exitcode.Errorf(exitcode.Usage, "finance: dbt executable %q not found (make deps-dbt installs var/venv/dbt/bin/dbt; pass --dbt or set SHARDFLOW_DBT_BIN)", bin)
	}
	proj, err := filepath.Abs(project)
	if err != nil {
		return nil, err
	}
	if _, err := os.Stat(filepath.Join(proj, "dbt_project.yml")); err != nil {
		return nil, exitcode.Errorf(exitcode.Usage, "finance: %s is not a dbt project (--project)", proj)
	}
	d := &dbt{bin: path, project: proj, stderr: io.Discard}
	if verbose {
		d.stderr = env.Stderr
	}
	for k, v := range env.Vars {
		d.env = append(d.env, k+"="+v)
	}
	d.env = append(d.env, "DBT_SEND_ANONYMOUS_USAGE_STATS=false")
	switch wh.Kind {
	case "duckdb":
		p := env.Vars["SHARDFLOW_DUCKDB_PATH"]
		if p == "" {
			p = wh.Path
		}
		p, err := filepath.Abs(p)
		if err != nil {
			return nil, err
		}
		if _, err := os.Stat(p); err != nil {
			return nil, exitcode.Errorf(exitcode.Usage, "finance: warehouse %s: %v", p, err)
		}
		d.env = append(d.env, "SHARDFLOW_DBT_TARGET=local", "SHARDFLOW_DUCKDB_PATH="+p)
	case "snowflake":
		d.env = append(d.env, "SHARDFLOW_DBT_TARGET=snowflake")
	default:
		return nil, exitcode.Errorf(exitcode.Usage, "finance: warehouse kind %q is not supported", wh.Kind)
	}
	return d, nil
}

// run runs dbt with args from the project directory and returns its output. A failure
// keeps dbt's error lines in the error.
func (d *dbt) run(ctx context.Context, args ...string) (string, error) {
	args = append(args, "--profiles-dir", d.project, "--target-path", filepath.Join(d.work, "target"),
		"--log-path", filepath.Join(d.work, "logs"), "--log-format", "text", "--no-use-colors")
	cmd := exec.CommandContext(ctx, d.bin, args...)
	cmd.Dir = d.project
	cmd.Env = d.env
	var out bytes.Buffer
	cmd.Stdout = io.MultiWriter(&out, d.stderr)
	cmd.Stderr = cmd.Stdout
	err := cmd.Run()
	if err == nil {
		return out.String(), nil
	}
	if ctx.Err() != nil {
		return out.String(), ctx.Err()
	}
	return out.String(), fmt.Errorf("dbt %s: %w%s", args[0], err, errorLines(out.String()))
}

var (
	verifyLine = regexp.MustCompile(`verify finance run \S+ .*`)
	ansi       = regexp.MustCompile(`\x1b\[[0-9;]*m`)
)

// vars is the --vars mapping of an invocation: the given entries ("k: v, ..." or "")
// and raw_schema when reading a restore.
func (d *dbt) vars(entries string) string {
	if d.rawSchema != "" {
		if entries != "" {
			entries += ", "
		}
		entries += fmt.Sprintf("raw_schema: '%s'", quote(d.rawSchema))
	}
	return "{" + entries + "}"
}

// verify verifies run (the latest when empty) and returns dbt's verdict line.
func (d *dbt) verify(ctx context.Context, run string) (string, error) {
	args := []string{"run-operation", "verify_finance_run", "--vars", d.vars("")}
	if run != "" {
		args = append(args, "--args", fmt.Sprintf("{run_id: '%s'}", quote(run)))
	}
	out, err := d.run(ctx, args...)
	line := verifyLine.FindString(ansi.ReplaceAllString(out, ""))
	if err != nil {
		if strings.Contains(line, "NOT reproducible") {
			return line, exitcode.Wrap(exitcode.CheckFail, errNotReproducible)
		}
		return line, err
	}
	if line == "" {
		return "", fmt.Errorf("finance verify: dbt printed no verdict")
	}
	return line, nil
}

// replay recomputes run on its recorded inputs as a new run, verifies the new run and
// compares its daily numbers with run's.
func (d *dbt) replay(ctx context.Context, w io.Writer, run, as string) error {
	if as == "" {
		out, err := d.run(ctx, "show", "--output", "text", "--inline",
			fmt.Sprintf("select count(*) + 1 as n from {{ ref('dim_finance_runs') }} where replay_of = '%s'", quote(run)))
		if err != nil {
			return err
		}
		n := strings.TrimSpace(lastCell(showTable(out)))
		as = fmt.Sprintf("%s-replay-%s", run, n)
	}
	vars := d.vars(fmt.Sprintf("finance_replay_of: '%s', finance_run_id: '%s', code_version: '%s'", quote(run), quote(as), quote(buildinfo.CodeVersion())))
	if _, err := d.run(ctx, "build", "--select", "dim_finance_runs", "fct_finance_run_inputs", "fct_finance_daily_versions", "fct_finance_daily", "--vars", vars); err != nil {
		return fmt.Errorf("finance replay %s: %w", run, err)
	}
	line, err := d.verify(ctx, as)
	if line != "" {
		fmt.Fprintln(w, line)
	}
	if err != nil {
		return err
	}
	out, err := d.run(ctx, "show", "--output", "text", "--inline", fmt.Sprintf(`
		with a as (select business_day, currency, region, gross_cents, refunds_cents, net_cents, charges, refunds
		           from {{ ref('fct_finance_daily_versions') }} where run_id = '%s'),
		     b as (select business_day, currency, region, gross_cents, refunds_cents, net_cents, charges, refunds
		           from {{ ref('fct_finance_daily_versions') }} where run_id = '%s')
		select (select count(*) from a) as original_rows, (select count(*) from b) as replay_rows,
		       (select count(*) from (select * from a except select * from b)) + (select count(*) from (select * from b except select * from a)) as differing`,
		quote(run), quote(as)))
	if err != nil {
		return err
	}
	cells := strings.Fields(strings.ReplaceAll(lastRow(showTable(out)), "|", " "))
	if len(cells) != 3 {
		return fmt.Errorf("finance replay: unexpected comparison output %q", lastRow(showTable(out)))
	}
	if cells[2] != "0" || cells[0] != cells[1] {
		fmt.Fprintf(w, "replay %s of %s: %s of %s daily rows differ\n", as, run, cells[2], cells[0])
		return exitcode.Wrap(exitcode.CheckFail, errNotReproducible)
	}
	fmt.Fprintf(w, "replay %s of %s: the same %s daily rows\n", as, run, cells[0])
	return nil
}

// showTable returns the table `dbt show --output text` printed (after its log lines).
func showTable(out string) string {
	out = ansi.ReplaceAllString(out, "")
	lines := strings.Split(out, "\n")
	for i, l := range lines {
		if strings.HasPrefix(strings.TrimSpace(l), "| ") {
			var b strings.Builder
			for _, t := range lines[i:] {
				if strings.TrimSpace(t) != "" {
					b.WriteString(t + "\n")
				}
			}
			return b.String()
		}
	}
	return ""
}

func lastRow(table string) string {
	rows := strings.Split(strings.TrimSpace(table), "\n")
	return rows[len(rows)-1]
}

func lastCell(table string) string {
	cells := strings.Split(strings.Trim(strings.TrimSpace(lastRow(table)), "|"), "|")
	return cells[len(cells)-1]
}

// errorLines returns dbt's error lines, indented, for an error message.
func errorLines(out string) string {
	var b strings.Builder
	for _, l := range strings.Split(ansi.ReplaceAllString(out, ""), "\n") {
		if strings.Contains(l, "Error") || strings.Contains(l, "ERROR") || strings.Contains(l, "NOT reproducible") {
			b.WriteString("\n  " + strings.TrimSpace(l))
		}
	}
	return b.String()
}

// quote escapes s for a single-quoted string: SQL and YAML (dbt's --vars and --args)
// both double the quote.
func quote(s string) string { return strings.ReplaceAll(s, "'", "''") }

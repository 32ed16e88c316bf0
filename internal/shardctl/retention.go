package shardctl

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"strings"
	"time"

	"github.com/shopsphere/shardflow/internal/command"
	"github.com/shopsphere/shardflow/internal/exitcode"
	"github.com/shopsphere/shardflow/internal/landing"
	"github.com/shopsphere/shardflow/internal/objstore"
	objbackend "github.com/shopsphere/shardflow/internal/objstore/backend"
	"github.com/shopsphere/shardflow/internal/objstore/s3"
	"github.com/shopsphere/shardflow/internal/registry"
	"github.com/shopsphere/shardflow/internal/retention"
	whbackend "github.com/shopsphere/shardflow/internal/warehouse/backend"
)

func init() {
	register(Command{
		Name:    "retention",
		Summary: "apply shards.yaml's retention: the bucket lifecycle, the warehouse purge, restores",
		Usage:   "plan | apply | purge [--dry-run] | restore (--run RUN | --table T --from DAY --to DAY) --schema S",
		Help: `The retention section of shards.yaml (docs/retention.md): raw rows are hot in the
warehouse for retention.hot (13 months), landed files and manifests are archived in
the object store until retention.archive (7 years).

  plan     print the policy per table and the bucket's lifecycle rules: the ones
           generated from shards.yaml (docker/s3/lifecycle.<env>.json) against the
           bucket's current ones (add, update, remove; rules not named shardflow-* are
           the bucket's own and kept). Changes nothing.
  apply    write the generated rules to the bucket (PutBucketLifecycleConfiguration,
           keeping the bucket's own rules), then read them back.
  purge    remove the warehouse's raw rows of files past their table's hot period,
           keeping every key's latest version, only once every such file is verified
           in the archive: its manifest present with the sha256 the warehouse loaded,
           the object's bytes hashing to it. One unverified file blocks the purge
           (exit 3, each one named). Idempotent and resumable; the retention DAG runs
           it daily. --dry-run verifies and lists, deleting nothing.
  restore  load archived files back, through the load path, into the schema --schema
           (never raw), stamped with their original load time: --run RUN restores the
           input files a finance run pinned (then: shardctl finance verify --run RUN
           --restore S); --table/--from/--to restores a range of dt= days.
           An object already moved to an archive storage class must be restored in S3
           first (docs/runbooks/retention.md).

Exit codes: 0 done; 3 purge blocked by the archive; 2 usage; 75 warehouse or store
unreachable (retry); 1 otherwise.`,
		Run: runRetention,
	})
}

func runRetention(ctx context.Context, env Env, args []string) error {
	c := commands["retention"]
	if len(args) == 0 || strings.HasPrefix(args[0], "-") {
		fmt.Fprintf(env.Stderr, "usage: shardctl retention %s\n", c.Usage)
		if len(args) > 0 && (args[0] == "-h" || args[0] == "--help") {
			return nil
		}
		return exitcode.Errorf(exitcode.Usage, "retention: give plan, apply, purge or restore")
	}
	sub := args[0]
	fs := newFlags(c, env)
	dry := fs.Bool("dry-run", false, "purge: verify and list, delete nothing")
	run := fs.String("run", "", "restore: the finance run whose inputs to restore")
	table := fs.String("table", "", "restore: the table of a day range (default: every table)")
	from := fs.String("from", "", "restore: first dt= day, YYYY-MM-DD")
	to := fs.String("to", "", "restore: last dt= day, YYYY-MM-DD")
	schema := fs.String("schema", "", "restore: the schema to restore into (e.g. restore_2025_10)")
	if err := command.Parse(fs, args[1:]); err != nil {
		return err
	}
	if err := noArgs(fs, "retention "+sub); err != nil {
		return err
	}
	reg, e, err := loadEnvironment(env)
	if err != nil {
		return err
	}
	switch sub {
	case "plan", "apply":
		return retentionLifecycle(ctx, env, reg, e, sub == "apply")
	case "purge":
		return retentionPurge(ctx, env, reg, e, *dry)
	case "restore":
		sel := retention.Selection{Run: *run, Table: *table}
		switch {
		case *schema == "":
			return exitcode.Errorf(exitcode.Usage, "retention restore: --schema is required (a schema of its own, e.g. restore_%s)", time.Now().UTC().Format("2006_01"))
		case strings.EqualFold(*schema, e.Warehouse.Schema) || strings.EqualFold(*schema, "raw"):
			return exitcode.Errorf(exitcode.Usage, "retention restore: --schema %s is the raw schema; restore into a schema of its own", *schema)
		case (*run == "") == (*from == "" && *to == ""):
			return exitcode.Errorf(exitcode.Usage, "retention restore: give --run, or --from and --to")
		case *run == "":
			if sel.From, err = time.Parse(time.DateOnly, *from); err != nil {
				return exitcode.Errorf(exitcode.Usage, "retention restore: --from %q is not a day (YYYY-MM-DD)", *from)
			}
			if sel.To, err = time.Parse(time.DateOnly, *to); err != nil || sel.To.Before(sel.From) {
				return exitcode.Errorf(exitcode.Usage, "retention restore: --to %q is not a day (YYYY-MM-DD) on or after --from", *to)
			}
		}
		return retentionRestore(ctx, env, reg, e, sel, *schema)
	}
	return exitcode.Errorf(exitcode.Usage, "retention: unknown subcommand %q (plan, apply, purge, restore)", sub)
}

// describeRetention prints the policy per table.
func describeRetention(w io.Writer, reg *registry.Registry, now time.Time) {
	rt := reg.Retention
	fmt.Fprintf(w, "  default      hot %s, archive %s in %s; finance marts %s; old versions %d days, incomplete uploads %d days\n",
		rt.Hot, rt.Archive, rt.ArchiveClass, rt.FinancePeriod(), rt.NoncurrentDays, rt.AbortMultipartDays)
	for _, t := range reg.Tables {
		hot, archive := rt.TablePeriods(t.Name)
		fmt.Fprintf(w, "  %-12s raw rows older than %s purged (today: before %s); files archived after %d days, expired after %d days\n",
			t.Name, hot, hot.Before(now).Format(time.DateOnly), hot.MaxDays(), archive.MaxDays())
	}
}

func retentionLifecycle(ctx context.Context, env Env, reg *registry.Registry, e *registry.Environment, apply bool) error {
	w := env.Stdout
	fmt.Fprintf(w, "retention of environment %s:\n", env.Name)
	describeRetention(w, reg, time.Now())
	if e.ObjectStore.Kind != "s3" {
		fmt.Fprintf(w, "\nobject store: a %s store has no lifecycle; landed files stay until removed (the purge still verifies each one before it removes its rows)\n", e.ObjectStore.Kind)
		if apply {
			return exitcode.Errorf(exitcode.Usage, "retention apply: environment %s's object store is kind %s, not s3", env.Name, e.ObjectStore.Kind)
		}
		return nil
	}
	want := retention.Rules(reg, retention.StorePrefix(e.ObjectStore))
	st, err := objbackend.Open(ctx, e.ObjectStore, objbackend.CredentialsFromEnv(env.Vars))
	if err != nil {
		return err
	}
	store := st.(*s3.Store)
	fmt.Fprintf(w, "\nbucket %s lifecycle (generated: docker/s3/lifecycle.%s.json):\n", store.Bucket(), env.Name)
	current, err := store.Lifecycle(ctx)
	if err != nil {
		for _, r := range want.Rules {
			fmt.Fprintf(w, "  want   %s\n", r.Describe())
		}
		return lifecycleError(err)
	}
	cur, extra := retention.FromSDK(current)
	for _, x := range extra {
		fmt.Fprintf(w, "  note   %s (not shown)\n", x)
	}
	changes := retention.Diff(cur, want)
	n := 0
	for _, ch := range changes {
		switch ch.Kind {
		case "keep":
			fmt.Fprintf(w, "  keep   %s (not shardflow's)\n", ch.From.Describe())
		case "remove":
			fmt.Fprintf(w, "  remove %s\n", ch.From.Describe())
			n++
		default:
			fmt.Fprintf(w, "  %-6s %s\n", ch.Kind, ch.To.Describe())
			n++
		}
	}
	if n == 0 {
		fmt.Fprintf(w, "  up to date (%d rules)\n", len(want.Rules))
		return nil
	}
	if !apply {
		fmt.Fprintf(w, "%d rule(s) to change; shardctl retention apply --env %s writes them\n", n, env.Name)
		return nil
	}
	if err := store.PutLifecycle(ctx, retention.Merge(current, want)); err != nil {
		return lifecycleError(err)
	}
	back, err := store.Lifecycle(ctx)
	if err != nil {
		return lifecycleError(err)
	}
	got, _ := retention.FromSDK(back)
	for _, ch := range retention.Diff(got, want) {
		if ch.Kind != "keep" {
			return fmt.Errorf("retention apply: bucket %s read back with rule %s %s", store.Bucket(), ch.ID, ch.Kind)
		}
	}
	fmt.Fprintf(w, "applied: %d rule(s) changed; the bucket's lifecycle matches shards.yaml\n", n)
	return nil
}

func lifecycleError(err error) error {
	if errors.Is(err, s3.ErrNotImplemented) {
		return exitcode.Wrap(exitcode.Usage, fmt.Errorf("%w (the bucket lifecycle API is needed: AWS S3, or a server that implements it; docs/retention.md)", err))
	}
	return objstore.Classify(err)
}

// openStoreAndWarehouse opens the environment's object store and warehouse.
func openStoreAndWarehouse(ctx context.Context, env Env, e *registry.Environment) (objstore.Store, *whbackend.Opened, error) {
	st, err := objbackend.Open(ctx, e.ObjectStore, objbackend.CredentialsFromEnv(env.Vars))
	if err != nil {
		return nil, nil, err
	}
	wh, err := whbackend.Open(ctx, e.Warehouse, env.Vars)
	return st, wh, err
}

func retentionPurge(ctx context.Context, env Env, reg *registry.Registry, e *registry.Environment, dry bool) error {
	st, wh, err := openStoreAndWarehouse(ctx, env, e)
	if err != nil {
		return err
	}
	defer wh.Close()
	p := &retention.Purger{Registry: reg, Store: st, Warehouse: wh, Raw: wh.Raw, Snowflake: wh.Dialect == landing.Snowflake,
		Now: time.Now(), Log: slog.New(slog.NewTextHandler(env.Stderr, nil))}
	sum, cands, err := p.Run(ctx, dry)
	w := env.Stdout
	verb, n := "purged", sum.Purged
	if dry {
		verb, n = "would purge", len(cands)
		for _, c := range cands {
			fmt.Fprintf(w, "  %s (%s, %s): %d rows, newest %s, hot from %s\n", c.FileKey, c.Table, c.Shard, c.Rows,
				c.Newest.UTC().Format(time.RFC3339), c.Cutoff.UTC().Format(time.RFC3339))
		}
	}
	fmt.Fprintf(w, "retention purge: %d file(s) past the hot period to purge, %d verified in the archive; %s %d (%d rows deleted, %d latest versions kept); %d purged before\n",
		sum.Candidates, sum.Verified, verb, n, sum.Deleted, sum.Kept, sum.Already)
	if dry && err == nil {
		fmt.Fprintln(w, "dry run: nothing deleted")
	}
	if errors.Is(err, retention.ErrArchive) {
		return exitcode.Wrap(exitcode.CheckFail, err)
	}
	return err
}

func retentionRestore(ctx context.Context, env Env, reg *registry.Registry, e *registry.Environment, sel retention.Selection, schema string) error {
	st, wh, err := openStoreAndWarehouse(ctx, env, e)
	if err != nil {
		return err
	}
	defer wh.Close()
	target, err := wh.InSchema(ctx, e.Warehouse, env.Vars, schema)
	if err != nil {
		return err
	}
	defer target.Close()
	r := &retention.Restorer{Registry: reg, Store: st, Source: wh, Raw: wh.Raw, RunInputs: wh.Qualify("finance.fct_finance_run_inputs"),
		Target: target, TargetSchema: target.Raw}
	files, err := r.Files(ctx, sel)
	if err != nil {
		return err
	}
	if len(files) == 0 {
		return exitcode.Errorf(exitcode.Usage, "retention restore: no loaded file matches (the load history has none for that selection)")
	}
	sum, err := r.Restore(ctx, files)
	fmt.Fprintf(env.Stdout, "retention restore into %s: %d file(s), %d loaded, %d already there, %d rows\n", target.Raw, sum.Files, sum.Loaded, sum.Skipped, sum.Rows)
	if err != nil {
		return err
	}
	if sel.Run != "" {
		fmt.Fprintf(env.Stdout, "next: shardctl finance verify --run %s --restore %s\n", sel.Run, target.Raw)
	}
	return nil
}

package shardctl

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"time"

	"github.com/shopsphere/shardflow/internal/command"
	"github.com/shopsphere/shardflow/internal/connector"
	"github.com/shopsphere/shardflow/internal/dagen"
	"github.com/shopsphere/shardflow/internal/exitcode"
	"github.com/shopsphere/shardflow/internal/genfile"
	"github.com/shopsphere/shardflow/internal/plan"
	"github.com/shopsphere/shardflow/internal/registry"
	"github.com/shopsphere/shardflow/internal/retention"
	"github.com/shopsphere/shardflow/internal/seed"
)

func init() {
	register(Command{
		Name:    "plan",
		Summary: "what a shards.yaml edit changes: fleet, hazards, generated files, dq coverage",
		Usage:   "[--base FILE] [--diff] [--check] [--root DIR]",
		Help: `Shows, before anything is applied, what the edited shards.yaml changes:

  registry   shards added or changed, moves appended, tables and PCI policies, settings,
             compared with --base (default: the file as committed at git HEAD);
  hazards    errors that must not be merged (a past move edited or removed, routing
             changed, a shard removed, a PCI policy weakened, a key changed) and warnings
             a reviewer must accept (a cutover not in the future, a new shard added active,
             a new column, windows or tokenizer key changed);
  files      every generated file that must change with it: dbt seeds (dbt/seeds), the
             Airflow DAGs (dags/<environment>/), the Debezium connector configs
             (docker/connect/connectors); --diff prints unified diffs;
  dq         the (shard, table) pairs dq checks per window, and which are new.

Nothing is written. 'shardctl generate' writes the files; after the merge,
'shardctl connectors plan|apply' updates Kafka Connect and Airflow loads the DAGs.
--check exits 3 when a generated file is stale or the plan has an error (CI); without
it the exit code is 0 for any valid registry. --root is the repository (default .).`,
		Run: runPlan,
	})
	register(Command{
		Name:    "generate",
		Summary: "write every file generated from shards.yaml (seeds, DAGs, connector configs, S3 lifecycle)",
		Usage:   "[--check] [--root DIR]",
		Help: `Renders everything generated from shards.yaml and writes what differs: the dbt seeds
(dbt/seeds), the Airflow DAGs of every environment (dags/<environment>/), the
Debezium connector configs (docker/connect/connectors, production topic prefix) and
the S3 lifecycle configuration of every s3 environment (docker/s3/lifecycle.<env>.json).
Files a generator no longer renders are removed (a retired shard's connector).
Commit the result with the shards.yaml edit; 'shardctl plan' shows it first.
--check writes nothing and exits 3 naming the stale files.`,
		Run: runGenerate,
	})
}

// generated renders every generator's output for reg, with directories under root.
func generated(reg *registry.Registry, root string) ([]genfile.Set, error) {
	s, err := seed.Render(reg, filepath.Join(root, "dbt", "seeds"))
	if err != nil {
		return nil, fmt.Errorf("render seeds: %w", err)
	}
	d, err := dagen.Render(reg, dagen.DefaultOptions(), filepath.Join(root, "dags"))
	if err != nil {
		return nil, fmt.Errorf("render DAGs: %w", err)
	}
	prefix, err := connectorTopicPrefix(reg)
	if err != nil {
		return nil, err
	}
	c, err := connector.Files(reg, prefix, filepath.Join(root, "docker", "connect", "connectors"))
	if err != nil {
		return nil, fmt.Errorf("render connectors: %w", err)
	}
	return []genfile.Set{s, d, c, retention.Files(reg, filepath.Join(root, "docker", "s3"))}, nil
}

// connectorTopicPrefix is the topic prefix of the committed connector configs: the
// production environment's (the one `shardctl connectors render` commits).
func connectorTopicPrefix(reg *registry.Registry) (string, error) {
	target, err := reg.Environment("production")
	if err != nil {
		return "", exitcode.Wrap(exitcode.Usage, fmt.Errorf("connector configs are rendered for the production environment: %w", err))
	}
	return target.Kafka.TopicPrefix, nil
}

func runPlan(_ context.Context, env Env, args []string) error {
	c := commands["plan"]
	fs := newFlags(c, env)
	basePath := fs.String("base", "", "the registry before the edit (default: git HEAD's version of it)")
	diff := fs.Bool("diff", false, "print unified diffs of the generated files")
	check := fs.Bool("check", false, "exit 3 when a generated file is stale or the plan has an error")
	root := fs.String("root", ".", "the repository root")
	if err := command.Parse(fs, args); err != nil {
		return err
	}
	if err := noArgs(fs, "plan"); err != nil {
		return err
	}
	cur, err := loadRegistry(env)
	if err != nil {
		return err
	}
	base, baseName, err := loadBase(env.Registry, *basePath)
	if err != nil {
		return err
	}
	w := env.Stdout
	p := plan.Compare(base, cur, time.Now())
	fmt.Fprintf(w, "plan for %s (base: %s)\n\nregistry:\n", env.Registry, baseName)
	p.Print(w)
	fmt.Fprintln(w, "\nretention:")
	describeRetention(w, cur, time.Now())

	sets, err := generated(cur, *root)
	if err != nil {
		return err
	}
	stale := 0
	fmt.Fprintln(w, "\ngenerated files:")
	for _, s := range sets {
		changes, err := s.Diff()
		if err != nil {
			return err
		}
		stale += len(changes)
		rel, _ := filepath.Rel(*root, s.Dir)
		if len(changes) == 0 {
			fmt.Fprintf(w, "  %-20s %s/: up to date (%d files)\n", s.Name, rel, len(s.Files))
			continue
		}
		fmt.Fprintf(w, "  %-20s %s/: %d to change\n", s.Name, rel, len(changes))
		for _, ch := range changes {
			fmt.Fprintf(w, "    %-6s %s\n", ch.Kind, ch.Path)
		}
		if *diff {
			for _, ch := range changes {
				fmt.Fprint(w, indent(genfile.Unified(filepath.ToSlash(rel), ch), "    "))
			}
		}
	}
	fmt.Fprintf(w, "\n%s; %d generated file(s) to change\n", p.Summary(), stale)
	if stale > 0 {
		fmt.Fprintln(w, "next: shardctl generate, commit the files with shards.yaml; after the merge: shardctl connectors plan && shardctl connectors apply")
	}
	if *check && (stale > 0 || p.Errors()) {
		return exitcode.Errorf(exitcode.CheckFail, "plan: %d generated file(s) stale, errors: %v", stale, p.Errors())
	}
	return nil
}

// loadBase reads the registry before the edit: the file at path, or, when path is
// empty, the committed version of the registry at git HEAD. It returns nil and a note
// when there is none (a new file, or not in a git checkout).
func loadBase(registryPath, path string) (*registry.Registry, string, error) {
	var data []byte
	name := path
	if path != "" {
		b, err := os.ReadFile(path)
		if err != nil {
			return nil, "", exitcode.Wrap(exitcode.Usage, fmt.Errorf("plan: --base: %w", err))
		}
		data = b
	} else {
		dir, file := filepath.Split(registryPath)
		if dir == "" {
			dir = "."
		}
		out, err := exec.Command("git", "-C", dir, "show", "HEAD:./"+file).Output()
		if err != nil {
			return nil, "none (not committed at git HEAD)", nil
		}
		data, name = out, "git HEAD"
	}
	r, err := registry.Check(bytes.NewReader(data))
	if err != nil {
		return nil, "", exitcode.Wrap(exitcode.Usage, fmt.Errorf("plan: the base registry (%s) is not valid: %w", name, err))
	}
	return r, name, nil
}

func indent(s, prefix string) string {
	var b strings.Builder
	for _, l := range strings.SplitAfter(s, "\n") {
		if l != "" {
			b.WriteString(prefix + l)
		}
	}
	return b.String()
}

func runGenerate(_ context.Context, env Env, args []string) error {
	c := commands["generate"]
	fs := newFlags(c, env)
	check := fs.Bool("check", false, "write nothing; exit 3 when a generated file is stale")
	root := fs.String("root", ".", "the repository root")
	if err := command.Parse(fs, args); err != nil {
		return err
	}
	if err := noArgs(fs, "generate"); err != nil {
		return err
	}
	reg, err := loadRegistry(env)
	if err != nil {
		return err
	}
	sets, err := generated(reg, *root)
	if err != nil {
		return err
	}
	var stale []string
	for _, s := range sets {
		var changes []genfile.Change
		if *check {
			changes, err = s.Diff()
		} else {
			changes, err = s.Write()
		}
		if err != nil {
			return err
		}
		rel, _ := filepath.Rel(*root, s.Dir)
		for _, ch := range changes {
			stale = append(stale, filepath.ToSlash(filepath.Join(rel, ch.Path)))
			if !*check {
				fmt.Fprintf(env.Stdout, "  %-6s %s/%s\n", ch.Kind, rel, ch.Path)
			}
		}
	}
	if *check {
		if len(stale) > 0 {
			return exitcode.Errorf(exitcode.CheckFail, "generate: out of date with %s: %s; run `shardctl generate` and commit", env.Registry, strings.Join(stale, ", "))
		}
		fmt.Fprintf(env.Stdout, "generated files up to date with %s\n", env.Registry)
		return nil
	}
	fmt.Fprintf(env.Stdout, "%d file(s) changed\n", len(stale))
	return nil
}

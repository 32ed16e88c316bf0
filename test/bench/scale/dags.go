package main

import (
	"bytes"
	"context"
	_ "embed"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strings"
	"text/tabwriter"

	"github.com/shopsphere/shardflow/internal/capacity"
	"github.com/shopsphere/shardflow/internal/dagen"
	"github.com/shopsphere/shardflow/internal/registry"
)

// parseScript times a DagBag parse of one folder (parse.py).
//
//go:embed parse.py
var parseScript []byte

// parsed is parse.py's output.
type parsed struct {
	ImportSeconds float64            `json:"import_seconds"`
	ColdSeconds   float64            `json:"cold_seconds"`
	WarmSeconds   float64            `json:"warm_seconds"`
	ImportErrors  map[string]string  `json:"import_errors"`
	FileSeconds   map[string]float64 `json:"file_seconds"`
	DAGs          map[string]struct {
		File        string   `json:"file"`
		Tasks       int      `json:"tasks"`
		Pods        int      `json:"pods"`
		RunsPerHour *float64 `json:"runs_per_hour"`
	} `json:"dags"`
}

// podsPerHour is the pods the scheduled DAGs start in an hour: each DAG's pod tasks
// times its runs per hour (a daily DAG counts 1/24).
func (p parsed) podsPerHour() float64 {
	var n float64
	for _, d := range p.DAGs {
		if d.RunsPerHour != nil {
			n += float64(d.Pods) * *d.RunsPerHour
		}
	}
	return n
}

// runDAGs renders the DAGs, as `shardctl gen-dags` does, for registries of each shard
// count (shards.yaml's tables and settings, an even split of its buckets) and times
// Airflow's parse of each environment's folder: production (the k8s target, one
// KubernetesPodOperator per task) and local (subprocesses).
func runDAGs(ctx context.Context, c config, stdout io.Writer) (capacity.Rates, error) {
	if _, err := os.Stat(c.python); err != nil {
		return nil, fmt.Errorf("airflow venv: %w (run `make deps-airflow`)", err)
	}
	work := filepath.Join(c.dir, "dags")
	_ = os.RemoveAll(work)
	if err := os.MkdirAll(work, 0o755); err != nil {
		return nil, err
	}
	script := filepath.Join(work, "parse.py")
	if err := os.WriteFile(script, parseScript, 0o644); err != nil {
		return nil, err
	}
	base, err := os.ReadFile(c.registry)
	if err != nil {
		return nil, err
	}
	type result struct {
		n    int
		env  string
		p    parsed
		reg  *registry.Registry
		dags string
	}
	var results []result
	for _, n := range c.dagShards {
		text, err := registry.Generate(base, n, 0)
		if err != nil {
			return nil, err
		}
		reg, err := registry.Check(bytes.NewReader(text))
		if err != nil {
			return nil, err
		}
		dir := filepath.Join(work, fmt.Sprintf("shards-%d", n))
		set, err := dagen.Render(reg, dagen.DefaultOptions(), dir)
		if err != nil {
			return nil, err
		}
		if _, err := set.Write(); err != nil {
			return nil, err
		}
		envs := make([]string, 0, len(reg.Environments))
		for e := range reg.Environments {
			envs = append(envs, e)
		}
		sort.Sort(sort.Reverse(sort.StringSlice(envs))) // production first
		for _, env := range envs {
			p, err := parseFolder(ctx, c, script, filepath.Join(dir, env))
			if err != nil {
				return nil, fmt.Errorf("%d shards, %s: %w", n, env, err)
			}
			if len(p.ImportErrors) > 0 {
				return nil, fmt.Errorf("%d shards, %s: import errors: %v", n, env, p.ImportErrors)
			}
			results = append(results, result{n: n, env: env, p: p, reg: reg, dags: dir})
		}
	}

	header(stdout, fmt.Sprintf("DAG parse: DAGs rendered from shards.yaml for N shards, parsed by Airflow's DagBag (%s), warm best of %d", c.python, c.dagRuns))
	tw := tabwriter.NewWriter(stdout, 0, 0, 2, ' ', tabwriter.AlignRight)
	fmt.Fprintln(tw, "shards\tenvironment\tcold parse s\twarm parse s\thourly.py s\thourly tasks\thourly pods/run\thourly runs/h\tpods/h (scheduled DAGs)\t")
	rates := capacity.Rates{}
	for _, r := range results {
		hourly := r.p.DAGs[dagen.DAGID(r.reg.Fleet, dagen.Hourly)]
		runs := 0.0
		if hourly.RunsPerHour != nil {
			runs = *hourly.RunsPerHour
		}
		fmt.Fprintf(tw, "%d\t%s\t%.2f\t%.2f\t%.2f\t%d\t%d\t%.0f\t%.0f\t\n", r.n, r.env, r.p.ColdSeconds, r.p.WarmSeconds,
			r.p.FileSeconds[dagen.Hourly+".py"], hourly.Tasks, hourly.Pods, runs, r.p.podsPerHour())
		if r.env != "production" {
			continue
		}
		rates[fmt.Sprintf("dag_parse_seconds_%d", r.n)] = capacity.Rate{Value: round2(r.p.ColdSeconds), Unit: "s",
			Note: fmt.Sprintf("first DagBag parse of dags/production rendered for %d shards (operator imports included; warm %.2fs, hourly.py %.2fs); machine shared, load average %s",
				r.n, r.p.WarmSeconds, r.p.FileSeconds[dagen.Hourly+".py"], loadAverage())}
		rates[fmt.Sprintf("dag_tasks_hourly_%d", r.n)] = capacity.Rate{Value: float64(hourly.Tasks), Unit: "tasks",
			Note: fmt.Sprintf("tasks of the hourly DAG for %d shards; %d of them KubernetesPodOperator pods per run, %.0f pods an hour over all scheduled DAGs", r.n, hourly.Pods, r.p.podsPerHour())}
	}
	if err := tw.Flush(); err != nil {
		return nil, err
	}
	fmt.Fprintln(stdout, "cold: the first parse in the process (imports the operators and providers, as a DAG processor's parse of a changed file does; Airflow's core.dagbag_import_timeout default is 30s per file); warm: modules cached")

	fmt.Fprintln(stdout, "\ntasks per DAG (production; pods: KubernetesPodOperator tasks)")
	tw = tabwriter.NewWriter(stdout, 0, 0, 2, ' ', tabwriter.AlignRight)
	fmt.Fprintln(tw, "shards\tDAG\ttasks\tpods\truns/h\t")
	for _, r := range results {
		if r.env != "production" {
			continue
		}
		ids := make([]string, 0, len(r.p.DAGs))
		for id := range r.p.DAGs {
			ids = append(ids, id)
		}
		sort.Strings(ids)
		for _, id := range ids {
			d := r.p.DAGs[id]
			runs := "manual"
			if d.RunsPerHour != nil {
				runs = strings.TrimRight(strings.TrimRight(fmt.Sprintf("%.3f", *d.RunsPerHour), "0"), ".")
			}
			fmt.Fprintf(tw, "%d\t%s\t%d\t%d\t%s\t\n", r.n, id, d.Tasks, d.Pods, runs)
		}
	}
	return rates, tw.Flush()
}

// parseFolder runs parse.py on one DAG folder in a fresh Python process.
func parseFolder(ctx context.Context, c config, script, folder string) (parsed, error) {
	outPath := folder + ".parse.json"
	cmd := exec.CommandContext(ctx, c.python, script, folder, fmt.Sprint(c.dagRuns), outPath)
	cmd.Env = append(os.Environ(), "AIRFLOW_HOME="+filepath.Join(filepath.Dir(script), "airflow-home"))
	var logs bytes.Buffer // Airflow logs to stdout and stderr
	cmd.Stdout, cmd.Stderr = &logs, &logs
	if err := cmd.Run(); err != nil {
		return parsed{}, fmt.Errorf("parse %s: %w: %s", folder, err, tailLines(logs.String(), 15))
	}
	b, err := os.ReadFile(outPath)
	if err != nil {
		return parsed{}, fmt.Errorf("parse %s: %w: %s", folder, err, tailLines(logs.String(), 15))
	}
	var p parsed
	if err := json.Unmarshal(b, &p); err != nil {
		return parsed{}, fmt.Errorf("parse %s: %s: %w", folder, outPath, err)
	}
	return p, nil
}

// tailLines is the last n lines of s.
func tailLines(s string, n int) string {
	lines := strings.Split(strings.TrimRight(s, "\n"), "\n")
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	return strings.Join(lines, "\n")
}

// round2 keeps two decimals.
func round2(x float64) float64 { return float64(int64(x*100+0.5)) / 100 }

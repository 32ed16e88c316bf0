// Package dagen renders shards.yaml into the Airflow DAG files under dags/: for every
// environment of the registry one directory, dags/<environment>/, holding the same five
// DAGs (hourly batch, finance daily, backfill, CDC micro-batch, retention daily) and a task factory
// module for the environment's target.
//
// The DAG files are identical for every target: they name binaries, arguments and the
// shards a task touches, and call the factory (shardflow_tasks.py). The factory is what
// differs: for target local it runs the binaries as subprocesses of the Airflow worker
// (a pool serialises the DuckDB writers); for target k8s it builds a
// KubernetesPodOperator per task (image, secrets from Kubernetes secrets, resources,
// labels per shard). Both map exit codes the same way: 75 is retried with backoff, any
// other failure fails the task at once (docs/contracts.md §8).
//
// Render is a pure function of the registry and the options: the same shards.yaml
// always gives the same bytes, so the output is committed and golden-tested, and
// `shardctl gen-dags --check` fails CI when dags/ drifts from shards.yaml.
package dagen

import (
	"bytes"
	"embed"
	"errors"
	"fmt"
	"regexp"
	"sort"
	"strings"
	"text/template"
	"time"

	"github.com/shopsphere/shardflow/internal/genfile"
	"github.com/shopsphere/shardflow/internal/registry"
)

// DAG kinds. DAGID(fleet, kind) is the DAG id of each in every environment.
const (
	Hourly       = "hourly"
	FinanceDaily = "finance_daily"
	Backfill     = "backfill"
	CDC          = "cdc_microbatch"
	Retention    = "retention_daily"
)

// Kinds lists every DAG kind in rendering order.
var Kinds = []string{Hourly, FinanceDaily, Backfill, CDC, Retention}

// DAGID is the id of a DAG of the fleet: "<fleet>__<kind>".
func DAGID(fleet, kind string) string { return fleet + "__" + kind }

// ExtractTaskID is the id of a shard's extract task of table in the hourly DAG;
// LoadTaskID and DQTaskID likewise. Every task of a shard lives in the task group
// named by the shard id, so its ids start with "<shard>.".
func ExtractTaskID(shard, table string) string { return shard + ".extract_" + table }

// LoadTaskID is the load task of a shard and table in the hourly DAG.
func LoadTaskID(shard, table string) string { return shard + ".load_" + table }

// DQTaskID is the dq task of a shard and table in the hourly DAG.
func DQTaskID(shard, table string) string { return shard + ".dq_" + table }

// GroupOf returns the shard a task id of a shard group belongs to, or "" for the
// fleet-wide tasks (window_closed, dbt_build, dq_cross_shard, ...).
func GroupOf(taskID string) string {
	g, _, ok := strings.Cut(taskID, ".")
	if !ok {
		return ""
	}
	return g
}

// Pools the factories put tasks into. The local DuckDB file allows one writer, so load,
// dq and dbt share a pool of one slot; in production only dbt is serialised (two dbt
// builds merging into fact_orders at once would conflict).
const (
	LocalWriterPool = "shardflow_duckdb_writer"
	K8sDBTPool      = "shardflow_dbt"
)

// MaxBackfillWindows is the most (table, window) pairs one backfill run maps; `shardctl
// backfill` splits a longer range into several runs.
const MaxBackfillWindows = 1000

// Options are the retry policy every task gets (only exit code 75 is retried) and how
// often the finance DAG's completeness sensors look at the hourly runs.
type Options struct {
	Retries       int
	RetryDelay    time.Duration // first retry; doubles each time
	MaxRetryDelay time.Duration
	FinancePoke   time.Duration // between two checks of a wait_<shard> sensor
}

// DefaultOptions is the policy of the committed DAGs: 3 retries after 1, 2 and 4
// minutes (capped at 15), enough to outlast a shard restart or a window still held
// open by a long transaction; the finance sensors check every 5 minutes.
func DefaultOptions() Options {
	return Options{Retries: 3, RetryDelay: time.Minute, MaxRetryDelay: 15 * time.Minute, FinancePoke: 5 * time.Minute}
}

// Sentinel errors.
var (
	ErrNoCron = errors.New("no cron expression gives this window")
)

// spec is what the templates see: the registry reduced to what the DAGs need.
type spec struct {
	Fleet       string
	Environment string
	Target      string
	Shards      []shardSpec
	Standbys    bool     // a shard names a hot standby (connection.standby)
	AllShards   []string // ids of the shards the DAGs run (every shard not retired)
	Tables      []string
	Window      time.Duration
	SafetyLag   time.Duration
	Start       time.Time // extract.start: the hourly DAG's start_date, with catchup; zero: none
	Cron        string    // the hourly DAG's schedule: one run per extract window
	CDCEvery    time.Duration
	CDCBudget   time.Duration
	AlertAt     registry.ClockTime
	ReadyBy     registry.ClockTime
	Options     Options
	Warehouse   string // local: the DuckDB file (relative to the repository root, or absolute)
	Image       string
	ImageTag    string
	Namespace   string
	TokenKey    secretSpec
	WarehouseDS *secretSpec // snowflake DSN, nil for duckdb
	DBTSecret   string      // k8s: secret with the dbt profile's Snowflake variables
	DAG         map[string]string
	MaxBackfill int
	// RetentionHot and RetentionArchive are shards.yaml's default retention periods.
	RetentionHot, RetentionArchive string
	// Runbooks is monitoring.runbooks; Alertmanager and Pushgateway the environment's
	// monitoring targets ("": the callbacks only log, nothing is pushed).
	Runbooks, Alertmanager, Pushgateway string
}

type shardSpec struct {
	ID         string
	State      string
	ExtractDSN secretSpec
	StandbyDSN *secretSpec // connection.standby, when shards.yaml names one
}

type secretSpec struct {
	Env, Secret, Key string
}

//go:embed templates/*.tmpl
var templates embed.FS

var tmpl = template.Must(template.New("").Delims("[[", "]]").Funcs(template.FuncMap{
	"py":      pyString,
	"seconds": func(d time.Duration) int64 { return int64(d / time.Second) },
	"minutes": func(c registry.ClockTime) int { return c.Minutes() },
	"dur":     shortDuration,
	"pydatetime": func(t time.Time) string {
		t = t.UTC()
		return fmt.Sprintf("datetime(%d, %d, %d, %d, %d, tzinfo=UTC)", t.Year(), int(t.Month()), t.Day(), t.Hour(), t.Minute())
	},
	"pylist": func(xs []string) string {
		q := make([]string, len(xs))
		for i, x := range xs {
			q[i] = pyString(x)
		}
		return "[" + strings.Join(q, ", ") + "]"
	},
}).ParseFS(templates, "templates/*.tmpl"))

// Render renders the DAGs of every environment of r as the generated set of dir (the
// dags directory), in a fixed order: ruff.toml, then for each environment (sorted) its
// directory. The set owns all of dir: a file it no longer renders is stale (caches of
// Python and ruff aside).
func Render(r *registry.Registry, opt Options, dir string) (genfile.Set, error) {
	files, err := render(r, opt)
	if err != nil {
		return genfile.Set{}, err
	}
	return genfile.Set{Name: "Airflow DAGs", Dir: dir, Files: files, Owned: "**", Skip: []string{"__pycache__", ".ruff_cache"}}, nil
}

func render(r *registry.Registry, opt Options) ([]genfile.File, error) {
	if opt.Retries < 0 || opt.RetryDelay <= 0 || opt.MaxRetryDelay < opt.RetryDelay {
		return nil, fmt.Errorf("render dags: retry options %+v: want retries >= 0 and 0 < delay <= max delay", opt)
	}
	if opt.FinancePoke < time.Second {
		return nil, fmt.Errorf("render dags: finance poke interval %s: want at least 1s", opt.FinancePoke)
	}
	cron, err := Cron(r.Extract.Window.Duration)
	if err != nil {
		return nil, fmt.Errorf("render dags: extract.window %s: %w", r.Extract.Window, err)
	}
	files := []genfile.File{{Path: "ruff.toml", Data: mustExec("ruff.toml.tmpl", nil)}}
	names := make([]string, 0, len(r.Environments))
	for n := range r.Environments {
		names = append(names, n)
	}
	sort.Strings(names)
	for _, name := range names {
		s, err := specOf(r, name, cron, opt)
		if err != nil {
			return nil, fmt.Errorf("render dags: %w", err)
		}
		out := []struct{ file, tmpl string }{
			{"shardflow_tasks.py", "tasks_" + s.Target + ".py.tmpl"},
			{Hourly + ".py", "hourly.py.tmpl"},
			{FinanceDaily + ".py", "finance_daily.py.tmpl"},
			{Backfill + ".py", "backfill.py.tmpl"},
			{CDC + ".py", "cdc_microbatch.py.tmpl"},
			{Retention + ".py", "retention_daily.py.tmpl"},
			{"pools.json", "pools.json.tmpl"},
			{".airflowignore", "airflowignore.tmpl"},
		}
		for _, o := range out {
			var buf bytes.Buffer
			if err := tmpl.ExecuteTemplate(&buf, o.tmpl, s); err != nil {
				return nil, fmt.Errorf("render dags: %s/%s: %w", name, o.file, err)
			}
			files = append(files, genfile.File{Path: name + "/" + o.file, Data: buf.Bytes()})
		}
	}
	return files, nil
}

func mustExec(name string, data any) []byte {
	var buf bytes.Buffer
	if err := tmpl.ExecuteTemplate(&buf, name, data); err != nil {
		panic(err)
	}
	return buf.Bytes()
}

// Cron returns the cron expression that ticks once per window (UTC): windows are
// whole minutes dividing a day (registry.Validate), but only those dividing an hour
// or a whole number of hours dividing a day have one (45m has none).
func Cron(window time.Duration) (string, error) {
	m := int(window / time.Minute)
	switch {
	case m == 1:
		return "* * * * *", nil
	case m < 60 && 60%m == 0:
		return fmt.Sprintf("*/%d * * * *", m), nil
	case m == 60:
		return "0 * * * *", nil
	case m%60 == 0 && 24%(m/60) == 0 && m/60 < 24:
		return fmt.Sprintf("0 */%d * * *", m/60), nil
	case m == 24*60:
		return "0 0 * * *", nil
	}
	return "", fmt.Errorf("%w (use a window that divides an hour, or a whole number of hours dividing a day)", ErrNoCron)
}

func specOf(r *registry.Registry, env, cron string, opt Options) (*spec, error) {
	e := r.Environments[env]
	s := &spec{
		Fleet: r.Fleet, Environment: env, Target: e.Airflow.Target,
		Window: r.Extract.Window.Duration, SafetyLag: r.Extract.SafetyLag.Duration, Start: r.Extract.Start, Cron: cron,
		CDCBudget: r.SLA.CDCFreshness.Duration, AlertAt: r.SLA.FinanceAlertAt, ReadyBy: r.SLA.FinanceReadyBy,
		Options: opt, Warehouse: e.Warehouse.Path, Image: e.Airflow.Image, Namespace: e.Airflow.Namespace,
		DAG: map[string]string{}, MaxBackfill: MaxBackfillWindows,
		RetentionHot: r.Retention.Hot.String(), RetentionArchive: r.Retention.Archive.String(),
		Runbooks: r.Monitoring.Runbooks, Alertmanager: e.Monitoring.Alertmanager, Pushgateway: e.Monitoring.Pushgateway,
	}
	// A micro-batch every half of the freshness budget: a change waits at most one
	// interval for the next run, and the run has the other half to land and load it.
	s.CDCEvery = (r.SLA.CDCFreshness.Duration / 2).Truncate(time.Second)
	if s.CDCEvery < time.Minute {
		return nil, fmt.Errorf("sla.cdc_freshness %s: a micro-batch every %s is below Airflow's useful minimum of 1m", r.SLA.CDCFreshness, s.CDCEvery)
	}
	for _, k := range Kinds {
		s.DAG[k] = DAGID(r.Fleet, k)
	}
	for _, t := range r.Tables {
		s.Tables = append(s.Tables, t.Name)
	}
	for i, sh := range r.Shards {
		if sh.State == registry.StateRetired {
			continue // owns nothing and may have no cluster any more; kept only for lineage
		}
		spec := shardSpec{ID: sh.ID, State: string(sh.State), ExtractDSN: secretOf(sh.Connection.Extract)}
		if sb := sh.Connection.Standby; sb != (registry.SecretRef{}) {
			ref := secretOf(sb)
			spec.StandbyDSN, s.Standbys = &ref, true
			if s.Target == "k8s" {
				if err := needK8s(fmt.Sprintf("shards[%d].connection.standby", i), sb); err != nil {
					return nil, fmt.Errorf("environment %s (target k8s): %w", env, err)
				}
			}
		}
		s.Shards = append(s.Shards, spec)
		s.AllShards = append(s.AllShards, sh.ID)
		if s.Target == "k8s" {
			if err := needK8s(fmt.Sprintf("shards[%d].connection.extract", i), sh.Connection.Extract); err != nil {
				return nil, fmt.Errorf("environment %s (target k8s): %w", env, err)
			}
		}
	}
	if len(s.Shards) == 0 {
		return nil, fmt.Errorf("environment %s: no shard that is not retired", env)
	}
	s.TokenKey = secretOf(r.Tokenizer.Key)
	if e.Warehouse.Kind == "snowflake" {
		w := secretOf(e.Warehouse.DSN)
		s.WarehouseDS = &w
		s.DBTSecret = e.Warehouse.DSN.K8sSecret
	}
	if s.Target == "k8s" {
		if err := needK8s("tokenizer.key", r.Tokenizer.Key); err != nil {
			return nil, fmt.Errorf("environment %s (target k8s): %w", env, err)
		}
		if e.Warehouse.Kind != "snowflake" {
			return nil, fmt.Errorf("environment %s: target k8s needs warehouse kind snowflake (a DuckDB file is local to one machine)", env)
		}
		if err := needK8s("environments."+env+".warehouse.dsn", e.Warehouse.DSN); err != nil {
			return nil, fmt.Errorf("environment %s (target k8s): %w", env, err)
		}
		_, tag, ok := strings.Cut(lastPathElem(e.Airflow.Image), ":")
		if !ok || tag == "" || tag == "latest" {
			return nil, fmt.Errorf("environment %s: airflow.image %q: give an explicit tag (it is the code version finance runs record)", env, e.Airflow.Image)
		}
		s.ImageTag = tag
	}
	return s, nil
}

func lastPathElem(image string) string {
	if i := strings.LastIndex(image, "/"); i >= 0 {
		return image[i+1:]
	}
	return image
}

func secretOf(s registry.SecretRef) secretSpec {
	return secretSpec{Env: s.Env, Secret: s.K8sSecret, Key: s.K8sKey}
}

func needK8s(path string, s registry.SecretRef) error {
	switch {
	case s.K8sSecret == "":
		return fmt.Errorf("%s.k8s_secret: required for a k8s target (the pods read secrets from Kubernetes)", path)
	case s.K8sKey == "":
		return fmt.Errorf("%s.k8s_key: required for a k8s target", path)
	}
	return nil
}

// shortDuration writes 1h, 5m, 90s: time.Duration.String without zero units.
func shortDuration(d time.Duration) string {
	s := d.String()
	if strings.HasSuffix(s, "m0s") {
		s = strings.TrimSuffix(s, "0s")
	}
	if strings.HasSuffix(s, "h0m") {
		s = strings.TrimSuffix(s, "0m")
	}
	return s
}

var pyPlain = regexp.MustCompile(`^[ -~]*$`)

// pyString quotes s as a Python string literal (double quotes, as ruff formats them).
func pyString(s string) string {
	if !pyPlain.MatchString(s) {
		panic(fmt.Sprintf("dagen: %q has characters the generator does not quote", s))
	}
	s = strings.ReplaceAll(s, `\`, `\\`)
	return `"` + strings.ReplaceAll(s, `"`, `\"`) + `"`
}

// Package fleet runs the local shard fleet: one real PostgreSQL cluster per shard of
// shards.yaml, on loopback, each with the OLTP schema of docs/contracts.md §1 in the
// database "shop" (schema.sql, embedded).
//
// The clusters use Debian's PostgreSQL binaries (/usr/lib/postgresql/<version>/bin, the
// highest version installed). initdb refuses to run as root, so every PostgreSQL program
// runs as the `postgres` OS user (runuser), in a directory that user owns. Layout:
//
//	<dir>/fleet.json        state: binaries, ports, the fleet's generated passwords (0600)
//	<dir>/fleet.env         `export SHARDFLOW_<ID>_*_DSN=...` lines for the shell (0600)
//	<dir>/template/         one initdb'd data directory, copied for each shard
//	<dir>/<id>/data         the shard's data directory
//	<dir>/<id>/postgres.log the server log
//
// Up is idempotent: it creates what is missing, starts what is stopped and re-applies
// the (idempotent) schema, reusing existing clusters, ports and passwords.
package fleet

import (
	"cmp"
	"context"
	_ "embed"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"sync"

	"github.com/shopsphere/shardflow/internal/registry"
)

// Schema is the OLTP schema of every shard (schema.sql). Every statement is idempotent;
// it may be applied to any database, e.g. by a test that needs a fresh one.
//
//go:embed schema.sql
var Schema string

// Names every cluster of the fleet shares.
const (
	Database        = "shop"                  // the application database on every shard
	AdminUser       = "shardflow_admin"       // the cluster's superuser (workload, fixtures, moves)
	ExtractUser     = "shardflow_extract"     // read-only: extract-window and dq
	ReplicationUser = "shardflow_replication" // logical replication: Debezium
)

// DefaultBasePort is where `make up` puts shard 0; shard i listens on DefaultBasePort+i.
// It is below Linux's ephemeral range (32768-60999) and macOS's (49152-65535): a port in
// it can be taken at any moment by the local end of some outgoing connection, and the
// shard then fails to bind ("Address already in use"), as `make demo` once did at 55400.
const DefaultBasePort = 25400

// Sentinel errors.
var (
	ErrNoPostgres = errors.New("no PostgreSQL server binaries under /usr/lib/postgresql (run `make deps-apt`)")
	ErrNoFleet    = errors.New("no fleet here (run `shardctl fleet up` or `make up`)")
)

// Config says where and how to run a fleet.
type Config struct {
	// Dir holds everything (default var/fleet). It is created and chowned to postgres;
	// every parent must be traversable by the postgres user.
	Dir string
	// BasePort: the i-th shard of the registry listens on BasePort+i.
	BasePort int
	// Ports overrides the port of individual shards (tests pick free ports).
	Ports map[string]int
	// Registry lists the shards (one cluster each, in every state) and names their
	// DSN environment variables.
	Registry *registry.Registry
	// Fast turns off durability (fsync, full_page_writes, synchronous_commit): for
	// tests only; a machine crash can corrupt the clusters.
	Fast bool
	// BinDir overrides the PostgreSQL binaries (default: the highest version under
	// /usr/lib/postgresql).
	BinDir string
	// Logger receives one line per shard started (default: discard).
	Logger *slog.Logger
}

// Shard is one running cluster.
type Shard struct {
	ID      string
	Port    int
	DataDir string
	LogFile string
	// DSNs (postgres:// URLs on 127.0.0.1, database shop, sslmode=disable).
	AdminDSN       string // superuser AdminUser
	ExtractDSN     string // ExtractUser
	ReplicationDSN string // ReplicationUser; add replication=database for a walsender
	// The environment variables the DSNs are exported as in fleet.env: the names
	// shards.yaml gives for extract and replication, and AdminEnvName(id) for admin.
	ExtractEnv, ReplicationEnv, AdminEnv string
}

// Fleet is a set of clusters described by one state file.
type Fleet struct {
	Dir    string
	Shards []Shard // in registry order
	pg     pgBin
	log    *slog.Logger
}

// Secrets are the passwords generated for one fleet (hex, safe in URLs).
type Secrets struct {
	Admin       string `json:"admin"`
	Extract     string `json:"extract"`
	Replication string `json:"replication"`
}

// state is fleet.json.
type state struct {
	Version int          `json:"version"`
	BinDir  string       `json:"bin_dir"`
	Fast    bool         `json:"fast"`
	Secrets Secrets      `json:"secrets"`
	Shards  []stateShard `json:"shards"`
}

type stateShard struct {
	ID             string `json:"id"`
	Port           int    `json:"port"`
	ExtractEnv     string `json:"extract_env"`
	ReplicationEnv string `json:"replication_env"`
	AdminEnv       string `json:"admin_env,omitempty"`
}

// AdminEnvName is the environment variable fleet.env exports a shard's admin DSN as
// when shards.yaml names none (connection.admin): SHARDFLOW_<ID>_ADMIN_DSN.
func AdminEnvName(shardID string) string {
	return "SHARDFLOW_" + strings.ToUpper(strings.ReplaceAll(shardID, "-", "_")) + "_ADMIN_DSN"
}

// EnvFile is the path of the env file of the fleet in dir.
func EnvFile(dir string) string { return filepath.Join(dir, "fleet.env") }

// Up brings the fleet up: for every shard of the registry it creates the cluster if
// missing, starts it if stopped and applies the schema. It writes fleet.env and returns
// the running fleet.
func Up(ctx context.Context, cfg Config) (*Fleet, error) {
	if cfg.Registry == nil {
		return nil, errors.New("fleet up: no registry")
	}
	if cfg.Dir == "" {
		cfg.Dir = filepath.Join("var", "fleet")
	}
	if cfg.BasePort == 0 {
		cfg.BasePort = DefaultBasePort
	}
	log := cfg.Logger
	if log == nil {
		log = slog.New(slog.NewTextHandler(io.Discard, nil))
	}
	dir, err := filepath.Abs(cfg.Dir)
	if err != nil {
		return nil, fmt.Errorf("fleet up: %w", err)
	}
	if err := preparePostgresDir(dir); err != nil {
		return nil, fmt.Errorf("fleet up: %w", err)
	}

	st, err := readState(dir)
	switch {
	case errors.Is(err, ErrNoFleet):
		bin := cfg.BinDir
		if bin == "" {
			if bin, err = findBinDir(); err != nil {
				return nil, fmt.Errorf("fleet up: %w", err)
			}
		}
		st = &state{Version: 1, BinDir: bin, Fast: cfg.Fast, Secrets: Secrets{Admin: randomSecret(), Extract: randomSecret(), Replication: randomSecret()}}
	case err != nil:
		return nil, fmt.Errorf("fleet up: %w", err)
	}
	if cfg.BinDir != "" && cfg.BinDir != st.BinDir {
		return nil, fmt.Errorf("fleet up: the fleet in %s runs %s, not %s", dir, st.BinDir, cfg.BinDir)
	}

	// Ports: existing shards keep theirs; new ones get the configured port.
	known := map[string]*stateShard{}
	used := map[int]string{}
	for i := range st.Shards {
		known[st.Shards[i].ID] = &st.Shards[i]
		used[st.Shards[i].Port] = st.Shards[i].ID
	}
	for i, s := range cfg.Registry.Shards {
		want := cfg.BasePort + i
		if p, ok := cfg.Ports[s.ID]; ok {
			want = p
		}
		if k, ok := known[s.ID]; ok {
			if k.Port != want {
				return nil, fmt.Errorf("fleet up: shard %s: the fleet in %s has it on port %d, not %d: a shard keeps its port (use that base port, or `shardctl fleet down --purge` to start over)", s.ID, dir, k.Port, want)
			}
			k.ExtractEnv, k.ReplicationEnv, k.AdminEnv = s.Connection.Extract.Env, s.Connection.Replication.Env, AdminEnvOf(s)
			continue
		}
		if other, taken := used[want]; taken {
			return nil, fmt.Errorf("fleet up: shard %s: port %d is already shard %s's in %s", s.ID, want, other, dir)
		}
		used[want] = s.ID
		st.Shards = append(st.Shards, stateShard{ID: s.ID, Port: want, ExtractEnv: s.Connection.Extract.Env, ReplicationEnv: s.Connection.Replication.Env, AdminEnv: AdminEnvOf(s)})
		known[s.ID] = &st.Shards[len(st.Shards)-1]
	}
	if err := writeState(dir, st); err != nil {
		return nil, fmt.Errorf("fleet up: %w", err)
	}

	f := &Fleet{Dir: dir, pg: pgBin{dir: st.BinDir}, log: log}
	if err := f.pg.ensureTemplate(ctx, filepath.Join(dir, "template"), st.Secrets.Admin); err != nil {
		return nil, fmt.Errorf("fleet up: %w", err)
	}
	for _, s := range cfg.Registry.Shards {
		f.Shards = append(f.Shards, f.shard(st, *known[s.ID]))
	}

	// Bring shards up, a few at a time (initdb is a copy; start and schema take ~0.3s).
	errs := make([]error, len(f.Shards))
	var wg sync.WaitGroup
	sem := make(chan struct{}, 4)
	for i := range f.Shards {
		wg.Add(1)
		go func(i int) {
			defer wg.Done()
			sem <- struct{}{}
			defer func() { <-sem }()
			errs[i] = f.upShard(ctx, f.Shards[i], st)
		}(i)
	}
	wg.Wait()
	if err := errors.Join(errs...); err != nil {
		return f, fmt.Errorf("fleet up: %w", err)
	}
	if err := f.WriteEnv(EnvFile(dir)); err != nil {
		return f, fmt.Errorf("fleet up: %w", err)
	}
	return f, nil
}

// Open returns the fleet described by dir's state file, without starting anything.
// Shards are in the state file's order (the order they were first brought up).
func Open(dir string) (*Fleet, error) {
	dir, err := filepath.Abs(dir)
	if err != nil {
		return nil, err
	}
	st, err := readState(dir)
	if err != nil {
		return nil, fmt.Errorf("fleet open %s: %w", dir, err)
	}
	f := &Fleet{Dir: dir, pg: pgBin{dir: st.BinDir}, log: slog.New(slog.NewTextHandler(io.Discard, nil))}
	for _, s := range st.Shards {
		f.Shards = append(f.Shards, f.shard(st, s))
	}
	return f, nil
}

func (f *Fleet) shard(st *state, s stateShard) Shard {
	dsn := func(user, pw string) string {
		return fmt.Sprintf("postgres://%s:%s@127.0.0.1:%d/%s?sslmode=disable", user, pw, s.Port, Database)
	}
	return Shard{
		ID: s.ID, Port: s.Port,
		DataDir:        filepath.Join(f.Dir, s.ID, "data"),
		LogFile:        filepath.Join(f.Dir, s.ID, "postgres.log"),
		AdminDSN:       dsn(AdminUser, st.Secrets.Admin),
		ExtractDSN:     dsn(ExtractUser, st.Secrets.Extract),
		ReplicationDSN: dsn(ReplicationUser, st.Secrets.Replication),
		ExtractEnv:     s.ExtractEnv,
		ReplicationEnv: s.ReplicationEnv,
		AdminEnv:       cmp.Or(s.AdminEnv, AdminEnvName(s.ID)), // a fleet.json from before admin_env
	}
}

// AdminEnvOf is the variable a shard's admin DSN is exported as: the one shards.yaml
// names (connection.admin), else AdminEnvName.
func AdminEnvOf(s registry.Shard) string {
	if s.Connection.Admin.Env != "" {
		return s.Connection.Admin.Env
	}
	return AdminEnvName(s.ID)
}

// Shard returns the shard with id, or false.
func (f *Fleet) Shard(id string) (Shard, bool) {
	for _, s := range f.Shards {
		if s.ID == id {
			return s, true
		}
	}
	return Shard{}, false
}

// Env returns the variables fleet.env exports: each shard's extract, replication and
// admin DSN under the names shards.yaml (and AdminEnvName) give them.
func (f *Fleet) Env() map[string]string {
	m := map[string]string{}
	for _, s := range f.Shards {
		if s.ExtractEnv != "" {
			m[s.ExtractEnv] = s.ExtractDSN
		}
		if s.ReplicationEnv != "" {
			m[s.ReplicationEnv] = s.ReplicationDSN
		}
		m[s.AdminEnv] = s.AdminDSN
	}
	return m
}

// WriteEnv writes the Env variables as `export NAME='value'` lines (mode 0600).
func (f *Fleet) WriteEnv(path string) error {
	var b strings.Builder
	fmt.Fprintf(&b, "# The local shard fleet in %s. Generated by `shardctl fleet up`; do not edit.\n", f.Dir)
	fmt.Fprintf(&b, "# Holds passwords: keep it out of logs. Use: source %s\n", path)
	env := f.Env()
	names := make([]string, 0, len(env))
	for n := range env {
		names = append(names, n)
	}
	sort.Strings(names)
	for _, n := range names {
		fmt.Fprintf(&b, "export %s='%s'\n", n, env[n])
	}
	if err := os.WriteFile(path+".tmp", []byte(b.String()), 0o600); err != nil {
		return fmt.Errorf("write env file: %w", err)
	}
	if err := os.Rename(path+".tmp", path); err != nil {
		return fmt.Errorf("write env file: %w", err)
	}
	return nil
}

// Stop stops every cluster of the fleet (fast shutdown: open sessions are
// disconnected, nothing committed is lost). Stopping a stopped cluster is a no-op.
func (f *Fleet) Stop(ctx context.Context) error {
	errs := make([]error, len(f.Shards))
	var wg sync.WaitGroup
	for i, s := range f.Shards {
		wg.Add(1)
		go func() {
			defer wg.Done()
			if err := f.pg.stop(ctx, s.DataDir); err != nil {
				errs[i] = fmt.Errorf("shard %s: %w", s.ID, err)
			}
		}()
	}
	wg.Wait()
	if err := errors.Join(errs...); err != nil {
		return fmt.Errorf("fleet stop: %w", err)
	}
	return nil
}

// Running reports whether shard's cluster is running.
func (f *Fleet) Running(ctx context.Context, s Shard) (bool, error) {
	return f.pg.running(ctx, s.DataDir)
}

// StopShard stops one shard's cluster (tests use it to make a shard unreachable).
func (f *Fleet) StopShard(ctx context.Context, id string) error {
	s, ok := f.Shard(id)
	if !ok {
		return fmt.Errorf("stop shard %s: not in the fleet", id)
	}
	if err := f.pg.stop(ctx, s.DataDir); err != nil {
		return fmt.Errorf("stop shard %s: %w", id, err)
	}
	return nil
}

// StartShard starts one stopped shard's cluster again.
func (f *Fleet) StartShard(ctx context.Context, id string) error {
	s, ok := f.Shard(id)
	if !ok {
		return fmt.Errorf("start shard %s: not in the fleet", id)
	}
	if err := f.pg.start(ctx, s.DataDir, s.LogFile); err != nil {
		return fmt.Errorf("start shard %s: %w", id, err)
	}
	return nil
}

func (f *Fleet) upShard(ctx context.Context, s Shard, st *state) error {
	if err := f.pg.ensureData(ctx, filepath.Join(f.Dir, "template"), s.DataDir); err != nil {
		return fmt.Errorf("shard %s: create: %w", s.ID, err)
	}
	if err := writeConf(s.DataDir, s.Port, st.Fast); err != nil {
		return fmt.Errorf("shard %s: %w", s.ID, err)
	}
	if err := f.pg.start(ctx, s.DataDir, s.LogFile); err != nil {
		return fmt.Errorf("shard %s: start on port %d: %w", s.ID, s.Port, err)
	}
	if err := applySchema(ctx, s, st.Secrets); err != nil {
		return fmt.Errorf("shard %s: schema: %w", s.ID, err)
	}
	f.log.Info("shard up", "shard", s.ID, "port", s.Port)
	return nil
}

func readState(dir string) (*state, error) {
	b, err := os.ReadFile(filepath.Join(dir, "fleet.json"))
	if errors.Is(err, os.ErrNotExist) {
		return nil, ErrNoFleet
	}
	if err != nil {
		return nil, fmt.Errorf("read fleet state: %w", err)
	}
	var st state
	if err := json.Unmarshal(b, &st); err != nil {
		return nil, fmt.Errorf("read fleet state %s: %w", filepath.Join(dir, "fleet.json"), err)
	}
	return &st, nil
}

func writeState(dir string, st *state) error {
	b, err := json.MarshalIndent(st, "", "  ")
	if err != nil {
		return err
	}
	p := filepath.Join(dir, "fleet.json")
	if err := os.WriteFile(p+".tmp", append(b, '\n'), 0o600); err != nil {
		return fmt.Errorf("write fleet state: %w", err)
	}
	if err := os.Rename(p+".tmp", p); err != nil {
		return fmt.Errorf("write fleet state: %w", err)
	}
	return nil
}

// writeConf writes the shard's settings to shardflow.conf, which the template's
// postgresql.conf includes. Rewritten on every Up, so a changed setting applies at the
// next start.
func writeConf(dataDir string, port int, fast bool) error {
	var b strings.Builder
	b.WriteString("# written by internal/fleet on every `fleet up`; edits are overwritten\n")
	b.WriteString("listen_addresses = '127.0.0.1'\n")
	fmt.Fprintf(&b, "port = %d\n", port)
	b.WriteString(`unix_socket_directories = ''
timezone = 'UTC'
log_timezone = 'UTC'
max_connections = 60
shared_buffers = 32MB
max_prepared_transactions = 10
# logical decoding for Debezium: one slot per connector, plus room for tests and pg_recvlogical
wal_level = logical
max_wal_senders = 16
max_replication_slots = 16
# an abandoned slot invalidates after 2GB of WAL instead of filling the disk
max_slot_wal_keep_size = 2GB
max_wal_size = 512MB
log_line_prefix = '%m [%p] %q%u@%d '
log_min_messages = warning
`)
	if fast {
		b.WriteString("# Fast (tests): no durability. A machine crash can corrupt this cluster.\nfsync = off\nfull_page_writes = off\nsynchronous_commit = off\n")
	}
	p := filepath.Join(dataDir, "shardflow.conf")
	if err := os.WriteFile(p, []byte(b.String()), 0o600); err != nil {
		return fmt.Errorf("write config: %w", err)
	}
	return chownPostgres(p)
}

// Ports returns the port of every shard, by id.
func (f *Fleet) Ports() map[string]int {
	m := map[string]int{}
	for _, s := range f.Shards {
		m[s.ID] = s.Port
	}
	return m
}

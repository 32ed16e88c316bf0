// Package airflowtest runs a real Airflow 3 for a test, from the project's venv
// (var/venv/airflow, `make deps-airflow`): an AIRFLOW_HOME in a fresh directory with a
// SQLite metadata database, the pools of the DAG folder, and on demand the API server,
// scheduler (LocalExecutor) and DAG processor on a free loopback port.
//
// The scheduler does not create scheduled runs (use_job_schedule off): a test's runs
// are the ones it triggers or runs with `airflow dags test`, whatever the clock says.
// When the venv is missing the test is skipped, naming `make deps-airflow`; under
// CI=true it fails instead.
package airflowtest

import (
	"bytes"
	"context"
	"fmt"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/shopsphere/shardflow/internal/airflow"
	"github.com/shopsphere/shardflow/internal/testenv"
)

// User and Password are the simple auth manager's admin in every Home.
const (
	User     = "shardflow"
	Password = "shardflow-test-password"
)

// Home is one AIRFLOW_HOME with its metadata database migrated.
type Home struct {
	t       testing.TB
	Dir     string
	Dags    string
	Port    int
	bin     string
	env     []string
	started []*exec.Cmd
}

// New makes an AIRFLOW_HOME for the DAG folder dags (a dags/<environment> directory
// rendered by dagen), migrates its database and imports dags/pools.json. extra is added
// to the environment of every Airflow process (and so of the tasks they run).
func New(t testing.TB, dags string, extra map[string]string) *Home {
	t.Helper()
	root := testenv.Root(t)
	bin := filepath.Join(root, "var", "venv", "airflow", "bin")
	testenv.Need(t, filepath.Join(bin, "airflow"), "deps-airflow")
	dir := t.TempDir()
	ports, err := testenv.FreePorts(1)
	if err != nil {
		t.Fatal(err)
	}
	port := ports[0]
	h := &Home{t: t, Dir: dir, Dags: dags, Port: port, bin: bin}
	pw := fmt.Sprintf(`{%q: %q}`, User, Password)
	if err := os.WriteFile(filepath.Join(dir, "passwords.json"), []byte(pw), 0o600); err != nil {
		t.Fatal(err)
	}
	vars := map[string]string{
		"AIRFLOW_HOME":                                      dir,
		"AIRFLOW__CORE__DAGS_FOLDER":                        dags,
		"AIRFLOW__CORE__LOAD_EXAMPLES":                      "False",
		"AIRFLOW__CORE__EXECUTOR":                           "LocalExecutor",
		"AIRFLOW__CORE__PARALLELISM":                        "4",
		"AIRFLOW__CORE__AUTH_MANAGER":                       "airflow.api_fastapi.auth.managers.simple.simple_auth_manager.SimpleAuthManager",
		"AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_USERS":          User + ":admin",
		"AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_PASSWORDS_FILE": filepath.Join(dir, "passwords.json"),
		"AIRFLOW__CORE__EXECUTION_API_SERVER_URL":           fmt.Sprintf("http://127.0.0.1:%d/execution/", port),
		"AIRFLOW__DATABASE__SQL_ALCHEMY_CONN":               "sqlite:///" + filepath.Join(dir, "airflow.db"),
		"AIRFLOW__API__HOST":                                "127.0.0.1",
		"AIRFLOW__API__PORT":                                strconv.Itoa(port),
		"AIRFLOW__API__WORKERS":                             "1",
		"AIRFLOW__API__BASE_URL":                            fmt.Sprintf("http://127.0.0.1:%d", port),
		"AIRFLOW__API_AUTH__JWT_SECRET":                     "shardflow-test-jwt-secret-0123456789abcdef",
		"AIRFLOW__SCHEDULER__USE_JOB_SCHEDULE":              "False",
		"AIRFLOW__SCHEDULER__SCHEDULER_HEARTBEAT_SEC":       "2",
		"AIRFLOW__DAG_PROCESSOR__REFRESH_INTERVAL":          "5",
		"AIRFLOW__DAG_PROCESSOR__MIN_FILE_PROCESS_INTERVAL": "5",
		"AIRFLOW__LOGGING__BASE_LOG_FOLDER":                 filepath.Join(dir, "logs"),
		"AIRFLOW__CORE__DAGS_ARE_PAUSED_AT_CREATION":        "False",
		"NO_PROXY": "*",
	}
	for k, v := range extra {
		vars[k] = v
	}
	env := os.Environ()
	for k, v := range vars {
		env = append(env, k+"="+v)
	}
	h.env = env
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	if out, err := h.Airflow(ctx, "db", "migrate"); err != nil {
		t.Fatalf("airflow db migrate: %v\n%s", err, tail(out, 40))
	}
	if pools := filepath.Join(dags, "pools.json"); fileExists(pools) {
		if out, err := h.Airflow(ctx, "pools", "import", pools); err != nil {
			t.Fatalf("airflow pools import: %v\n%s", err, tail(out, 40))
		}
	}
	t.Cleanup(h.stop)
	return h
}

// Env is the environment of the Airflow processes.
func (h *Home) Env() []string { return h.env }

// URL is the API server's base URL.
func (h *Home) URL() string { return fmt.Sprintf("http://127.0.0.1:%d", h.Port) }

// Airflow runs the airflow CLI to completion and returns its combined output.
func (h *Home) Airflow(ctx context.Context, args ...string) (string, error) {
	cmd := exec.CommandContext(ctx, filepath.Join(h.bin, "airflow"), args...)
	cmd.Env = h.env
	cmd.Dir = h.Dir
	out, err := cmd.CombinedOutput()
	return string(out), err
}

// Start runs the API server, the scheduler and the DAG processor, and waits until the
// API answers and every DAG id in dagIDs has been parsed.
func (h *Home) Start(dagIDs ...string) {
	h.t.Helper()
	for _, c := range []string{"api-server", "scheduler", "dag-processor"} {
		logf, err := os.Create(filepath.Join(h.Dir, c+".log"))
		if err != nil {
			h.t.Fatal(err)
		}
		cmd := exec.Command(filepath.Join(h.bin, "airflow"), c)
		cmd.Env = h.env
		cmd.Dir = h.Dir
		cmd.Stdout, cmd.Stderr = logf, logf
		cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
		if err := cmd.Start(); err != nil {
			h.t.Fatalf("start airflow %s: %v", c, err)
		}
		h.started = append(h.started, cmd)
	}
	deadline := time.Now().Add(4 * time.Minute)
	for _, id := range append([]string{""}, dagIDs...) {
		for {
			if h.ready(id) {
				break
			}
			if time.Now().After(deadline) {
				h.t.Fatalf("airflow did not become ready (waiting for %q); logs in %s:\n%s", id, h.Dir, h.Logs())
			}
			for _, c := range h.started {
				if c.ProcessState != nil {
					h.t.Fatalf("airflow %s exited: %s", c.Args[1], h.Logs())
				}
			}
			time.Sleep(time.Second)
		}
	}
}

// ready checks the API's health (id "") or that a DAG is known to it.
func (h *Home) ready(id string) bool {
	if id == "" {
		resp, err := http.Get(h.URL() + "/api/v2/monitor/health")
		if err != nil {
			return false
		}
		resp.Body.Close()
		return resp.StatusCode == http.StatusOK
	}
	c, err := h.Client()
	if err != nil {
		return false
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	_, err = c.GetDAG(ctx, id)
	return err == nil
}

// Client returns an API client logged in as User.
func (h *Home) Client() (*airflow.Client, error) {
	return airflow.New(airflow.Config{URL: h.URL(), Username: User, Password: Password, RetryMax: 1})
}

// GetJSON reads an API path as User (the UI routes too) through the client.
func (h *Home) GetJSON(ctx context.Context, path string, out any) error {
	c, err := h.Client()
	if err != nil {
		return err
	}
	return c.GetJSON(ctx, path, out)
}

// Logs returns the tails of the service logs.
func (h *Home) Logs() string {
	var b bytes.Buffer
	for _, c := range []string{"api-server", "scheduler", "dag-processor"} {
		data, _ := os.ReadFile(filepath.Join(h.Dir, c+".log"))
		fmt.Fprintf(&b, "--- %s ---\n%s\n", c, tail(string(data), 30))
	}
	return b.String()
}

// TaskLog returns the log files of a task instance of a run (every try), concatenated.
func (h *Home) TaskLog(dagID, runID, taskID string) string {
	var b bytes.Buffer
	files, _ := filepath.Glob(filepath.Join(h.Dir, "logs", "dag_id="+dagID, "run_id="+runID, "task_id="+taskID, "*"))
	for _, f := range files {
		data, _ := os.ReadFile(f)
		b.Write(data)
	}
	return b.String()
}

// CallbackLog returns the logs of the executor callbacks (deadline alerts) of a run,
// concatenated.
func (h *Home) CallbackLog(dagID, runID string) string {
	var b bytes.Buffer
	files, _ := filepath.Glob(filepath.Join(h.Dir, "logs", "executor_callbacks", dagID, runID, "*"))
	for _, f := range files {
		data, _ := os.ReadFile(f)
		b.Write(data)
	}
	return b.String()
}

func (h *Home) stop() {
	for _, c := range h.started {
		if c.Process == nil {
			continue
		}
		_ = syscall.Kill(-c.Process.Pid, syscall.SIGTERM) // the process group: gunicorn/uvicorn workers, executor children
	}
	for _, c := range h.started {
		done := make(chan struct{})
		go func() { _ = c.Wait(); close(done) }()
		select {
		case <-done:
		case <-time.After(30 * time.Second):
			_ = syscall.Kill(-c.Process.Pid, syscall.SIGKILL)
			<-done
		}
	}
	h.started = nil
}

func fileExists(p string) bool {
	_, err := os.Stat(p)
	return err == nil
}

func tail(s string, n int) string {
	lines := strings.Split(strings.TrimRight(s, "\n"), "\n")
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	return strings.Join(lines, "\n")
}

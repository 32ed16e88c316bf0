// Package cdctest starts a real CDC stack for a test: one Kafka process (KRaft) and one
// Kafka Connect worker with the Debezium PostgreSQL plugin, on free loopback ports, in
// a fresh directory, through test/harness/cdc/stack.sh (the script `make cdc-up` runs).
// The stack is stopped and its directory removed when the test ends.
//
// The jars come from `make deps-cdc`. Without them Start skips the test, except under
// CI (CI set), where it fails: a missing install step must not pass as a skip.
package cdctest

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/shopsphere/shardflow/internal/connector"
	"github.com/shopsphere/shardflow/internal/registry"
	"github.com/shopsphere/shardflow/internal/testenv"
)

// Stack is a running Kafka + Connect pair.
type Stack struct {
	Dir        string // state, logs and the worker's working directory (Dir/connect)
	Brokers    []string
	ConnectURL string
	root       string
	env        []string
}

// Installed reports whether `make deps-cdc` has run.
func Installed(root string) bool {
	m, _ := filepath.Glob(filepath.Join(root, "var", "cdc", "lib", "kafka_2.13-*.jar"))
	_, err := os.Stat(filepath.Join(root, "var", "cdc", "plugins", "debezium-connector-postgres"))
	_, errSMT := os.Stat(filepath.Join(root, "var", "cdc", "plugins", "shardflow-tokenize", "shardflow-tokenize.jar"))
	return len(m) > 0 && err == nil && errSMT == nil
}

// Require skips (or, under CI, fails) the test when the CDC jars are not installed.
func Require(t testing.TB) string {
	t.Helper()
	root := testenv.Root(t)
	if !Installed(root) {
		testenv.Missing(t, "cdctest: Kafka/Connect/Debezium jars or the tokenize transform missing under var/cdc: run `make deps-cdc`")
	}
	return root
}

// Start brings up a stack and registers its teardown.
func Start(t testing.TB) *Stack {
	t.Helper()
	root := Require(t)
	dir, err := os.MkdirTemp("", "shardflow-cdc-")
	if err != nil {
		t.Fatal(err)
	}
	ports, err := testenv.FreePorts(3)
	if err != nil {
		t.Fatal(err)
	}
	s := &Stack{
		Dir:        dir,
		Brokers:    []string{fmt.Sprintf("127.0.0.1:%d", ports[0])},
		ConnectURL: fmt.Sprintf("http://127.0.0.1:%d", ports[2]),
		root:       root,
		env: append(os.Environ(),
			"CDC_DIR="+dir,
			fmt.Sprintf("KAFKA_PORT=%d", ports[0]),
			fmt.Sprintf("KAFKA_CONTROLLER_PORT=%d", ports[1]),
			fmt.Sprintf("CONNECT_PORT=%d", ports[2]),
			"CDC_HEAP=384m",
		),
	}
	t.Cleanup(func() {
		if err := s.run("down"); err != nil {
			t.Errorf("cdctest: %v", err)
		}
		if !t.Failed() || os.Getenv("CDCTEST_KEEP") == "" {
			_ = os.RemoveAll(dir)
		} else {
			t.Logf("cdctest: stack kept in %s", dir)
		}
	})
	if err := s.run("up"); err != nil {
		s.dumpLogs(t)
		t.Fatalf("cdctest: %v", err)
	}
	return s
}

func (s *Stack) run(arg string) error {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, "bash", filepath.Join(s.root, "test", "harness", "cdc", "stack.sh"), arg)
	cmd.Env = s.env
	out, err := cmd.CombinedOutput()
	if err != nil {
		return fmt.Errorf("stack.sh %s: %w: %s", arg, err, strings.TrimSpace(string(out)))
	}
	return nil
}

// WorkerDir is the Connect worker's working directory; connector secrets go in
// WorkerDir/secrets, the tokenizer key in WorkerDir/tokenizer (connector.WriteTokenizerKey).
func (s *Stack) WorkerDir() string { return filepath.Join(s.Dir, "connect") }

// WriteSecrets writes what the worker's config providers resolve the rendered
// connectors from, as `shardctl connectors secrets` does: each shard's connection file
// (replication maps a shard to its replication DSN) and the tokenize transform's key.
func (s *Stack) WriteSecrets(t testing.TB, tok registry.Tokenizer, replication map[string]string, tokenizerKey string) {
	t.Helper()
	for shard, dsn := range replication {
		b, err := connector.SecretsFile(shard, dsn)
		if err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(s.WorkerDir(), connector.SecretsDir, shard+".properties"), b, 0o600); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := connector.WriteTokenizerKey(filepath.Join(s.WorkerDir(), connector.TokenizerDir), tok, tokenizerKey); err != nil {
		t.Fatal(err)
	}
}

// KillConnect kills the Connect worker with SIGKILL (no clean shutdown, no offset flush).
func (s *Stack) KillConnect(t testing.TB) {
	t.Helper()
	if err := s.run("kill-connect"); err != nil {
		t.Fatal(err)
	}
}

// StartConnect starts the worker again and waits until it lists the plugin.
func (s *Stack) StartConnect(t testing.TB) {
	t.Helper()
	if err := s.run("start-connect"); err != nil {
		s.dumpLogs(t)
		t.Fatal(err)
	}
}

func (s *Stack) dumpLogs(t testing.TB) {
	for _, f := range []string{"kafka/kafka.log", "connect/connect.log"} {
		b, err := os.ReadFile(filepath.Join(s.Dir, f))
		if err != nil {
			continue
		}
		lines := strings.Split(string(b), "\n")
		if len(lines) > 40 {
			lines = lines[len(lines)-40:]
		}
		t.Logf("cdctest: tail of %s:\n%s", f, strings.Join(lines, "\n"))
	}
}

// ConnectLog returns the worker's log (for a test's failure message).
func (s *Stack) ConnectLog() string {
	b, _ := os.ReadFile(filepath.Join(s.Dir, "connect", "connect.log"))
	return string(b)
}

package main

import (
	"context"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/shopsphere/shardflow/internal/extract/extracttest"
	"github.com/shopsphere/shardflow/internal/landing"
	"github.com/shopsphere/shardflow/internal/objstore/s3"
	"github.com/shopsphere/shardflow/internal/objstore/s3/s3test"
)

// TestS3Environment: an environment whose object store is S3 (kind s3, on versitygw)
// runs the batch path end to end with the task binaries: extract-window lands orders and
// payments of every shard into the bucket (nothing in a local directory), load copies
// them out of the bucket into DuckDB (twice: the second run loads nothing), and dq
// checks completeness against the shards and scans every object in the bucket for
// card numbers.
func TestS3Environment(t *testing.T) {
	srv := s3test.Start()
	defer srv.Stop()
	srv.Need(t)
	ctx := context.Background()
	bucket := srv.Bucket(t)
	e := newEnv(t, "250")
	bins := buildTasks(t, "load", "dq")

	// environment s3: the bucket under prefix shardflow, a DuckDB warehouse of its own
	whPath := filepath.Join(t.TempDir(), "wh.duckdb")
	b, err := os.ReadFile(e.regPath)
	if err != nil {
		t.Fatal(err)
	}
	s3env := fmt.Sprintf(`environments:
  s3:
    object_store: {kind: s3, bucket: %s, prefix: shardflow, region: %s, endpoint: %q}
    warehouse: {kind: duckdb, path: %s}
    kafka: {brokers: ["127.0.0.1:1"], topic_prefix: shardflow}
    airflow: {target: local}
`, bucket, s3test.Region, srv.Endpoint, whPath)
	text := strings.Replace(string(b), "environments:\n", s3env, 1)
	if err := os.WriteFile(e.regPath, []byte(text), 0o644); err != nil {
		t.Fatal(err)
	}
	e.vars = append(e.vars, "SHARDFLOW_ENV=s3", "AWS_ACCESS_KEY_ID="+s3test.AccessKey, "AWS_SECRET_ACCESS_KEY="+s3test.SecretKey)

	w := windowAt("2026-03-10T10:00Z", e.reg.Extract.Window.Duration)
	for _, s := range e.fleet.Shards {
		custs := extracttest.CustomersOwnedBy(e.reg, s.ID, w.Start, 10, 1)
		for _, tb := range []string{"orders", "payments"} {
			if err := extracttest.Fill(ctx, e.admin(s.ID), e.reg, extracttest.Spec{Table: tb, Rows: 600, From: w.Start, To: w.End, Customers: custs, Seed: s.ID, Cards: testPANs}); err != nil {
				t.Fatal(err)
			}
		}
	}
	for _, s := range e.fleet.Shards {
		for _, tb := range []string{"orders", "payments"} {
			if code, out := e.extract("--shard", s.ID, "--table", tb, "--window", "2026-03-10T10:00Z"); code != 0 {
				t.Fatalf("extract %s %s into s3: exit %d\n%s", s.ID, tb, code, out)
			}
		}
	}
	if _, err := os.Stat(e.lake); !os.IsNotExist(err) {
		t.Fatalf("the local lake %s exists (%v): extract-window wrote outside the bucket", e.lake, err)
	}
	st, err := s3.Open(ctx, srv.Config(bucket, "shardflow"))
	if err != nil {
		t.Fatal(err)
	}
	keys, err := st.List(ctx, landing.Prefix)
	if err != nil {
		t.Fatal(err)
	}
	if want := len(e.fleet.Shards) * 2 * 2; len(keys) != want {
		t.Fatalf("bucket holds %d landed objects, want %d (data + manifest per shard and table): %v", len(keys), want, keys)
	}
	for _, k := range keys {
		rc, err := st.Get(ctx, k)
		if err != nil {
			t.Fatal(err)
		}
		raw, err := io.ReadAll(rc)
		rc.Close()
		if err != nil {
			t.Fatal(err)
		}
		for _, p := range testPANs {
			if strings.Contains(string(raw), p) {
				t.Fatalf("%s holds a card number", k)
			}
		}
	}

	for run, want := range []string{"loaded", "skipped"} {
		code, out := e.runBin(bins["load"], "--all")
		if code != 0 {
			t.Fatalf("load run %d from s3: exit %d\n%s", run+1, code, out)
		}
		for _, s := range e.fleet.Shards {
			line := fmt.Sprintf("shard %s: 2 files, 2 loaded (0 replaced), 0 skipped, 0 failed", s.ID)
			if want == "skipped" {
				line = fmt.Sprintf("shard %s: 2 files, 0 loaded (0 replaced), 2 skipped, 0 failed, 0 rows", s.ID)
			}
			if !strings.Contains(out, line) {
				t.Fatalf("load run %d: no %q in\n%s", run+1, line, out)
			}
		}
	}
	code, out := e.runBin(bins["dq"], "--window", "2026-03-10T10:00Z", "--table", "orders,payments", "--cross-shard", "--pci-files",
		"--run-id", "s3", "--freshness-sla", "1000000h")
	if code != 0 || !strings.Contains(out, "dq run s3: PASS") {
		t.Fatalf("dq over the s3 environment: exit %d\n%s", code, out)
	}
	for _, want := range []string{"pci_leak_files", fmt.Sprintf("%d landed objects scanned", len(keys)/2)} {
		if !strings.Contains(out, want) {
			t.Errorf("dq output lacks %q:\n%s", want, out)
		}
	}
}

// buildTasks builds tasks/<name> binaries for the test.
func buildTasks(t *testing.T, names ...string) map[string]string {
	t.Helper()
	dir := t.TempDir()
	out := map[string]string{}
	for _, n := range names {
		bin := filepath.Join(dir, n)
		if b, err := exec.Command("go", "build", "-o", bin, "../"+n).CombinedOutput(); err != nil {
			t.Fatalf("build %s: %v\n%s", n, err, b)
		}
		out[n] = bin
	}
	return out
}

// runBin runs a task binary in the test's environment.
func (e *env) runBin(bin string, args ...string) (int, string) {
	e.t.Helper()
	cmd := exec.Command(bin, args...)
	cmd.Env = e.vars
	out, err := cmd.CombinedOutput()
	if ee, ok := err.(*exec.ExitError); ok {
		return ee.ExitCode(), string(out)
	}
	if err != nil {
		e.t.Fatal(err)
	}
	return 0, string(out)
}

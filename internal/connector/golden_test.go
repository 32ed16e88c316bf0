package connector_test

import (
	"flag"
	"slices"
	"strings"
	"testing"

	"github.com/shopsphere/shardflow/internal/connector"
	"github.com/shopsphere/shardflow/internal/genfile"
	"github.com/shopsphere/shardflow/internal/registry"
)

var update = flag.Bool("update", false, "rewrite docker/connect/connectors from shards.yaml")

const committedDir = "../../docker/connect/connectors"

// TestCommittedConfigs: docker/connect/connectors/<shard>.json is exactly what the
// registry renders for production (drift fails CI; go test -update rewrites them).
func TestCommittedConfigs(t *testing.T) {
	reg, err := registry.Load("../../shards.yaml")
	if err != nil {
		t.Fatal(err)
	}
	env, err := reg.Environment("production")
	if err != nil {
		t.Fatal(err)
	}
	set, err := connector.Files(reg, env.Kafka.TopicPrefix, committedDir)
	if err != nil {
		t.Fatal(err)
	}
	if *update {
		if _, err := set.Write(); err != nil {
			t.Fatal(err)
		}
	}
	changes, err := set.Diff()
	if err != nil {
		t.Fatal(err)
	}
	for _, c := range changes {
		if c.Kind == genfile.Delete {
			t.Errorf("%s/%s: no managed shard renders it (stale; delete it)", committedDir, c.Path)
			continue
		}
		t.Errorf("%s/%s differs from what shards.yaml renders (run `shardctl connectors render` or go test ./internal/connector -update):\n%s", committedDir, c.Path, c.New)
	}
}

// TestRenderPCI: only the landed columns are included (drop-policy and undeclared
// columns never leave the shard); the token, last4 and redact
// columns go through the tokenize transform in the worker, before Kafka, with the key
// as a config-provider reference; no config value carries a credential.
func TestRenderPCI(t *testing.T) {
	reg, err := registry.Load("../../shards.yaml")
	if err != nil {
		t.Fatal(err)
	}
	s := reg.Shards[0]
	c, err := connector.Render(reg, "shardflow", s)
	if err != nil {
		t.Fatal(err)
	}
	in := strings.Split(c["column.include.list"], ",")
	for _, col := range []string{`public\.payments\.card_number`, `public\.orders\.note`, `public\.shardflow_signal\.data`} {
		if !slices.Contains(in, col) {
			t.Errorf("column.include.list %q lacks %s", in, col)
		}
	}
	for _, col := range []string{`public\.payments\.card_cvv`, `public\.payments\.card_expiry`} {
		if slices.Contains(in, col) {
			t.Errorf("column.include.list carries the drop-policy column %s", col)
		}
	}
	if _, ok := c["column.exclude.list"]; ok {
		t.Error("column.exclude.list is set: the include list alone decides what leaves the shard")
	}
	want := map[string]string{
		"transforms":                  "tokenize",
		"transforms.tokenize.type":    "com.shopsphere.shardflow.connect.Tokenize",
		"transforms.tokenize.key.id":  reg.Tokenizer.KeyID,
		"transforms.tokenize.key":     "${dir:tokenizer:" + reg.Tokenizer.Key.K8sKey + "}",
		"transforms.tokenize.columns": "orders.note:redact,payments.card_holder:token,payments.card_last4:last4,payments.card_number:token",
	}
	for k, v := range want {
		if c[k] != v {
			t.Errorf("%s = %q, want %q", k, c[k], v)
		}
	}
	for k, v := range c {
		if strings.Contains(k, "password") || strings.Contains(k, "user") || strings.Contains(k, "hostname") || k == "transforms.tokenize.key" {
			if !strings.HasPrefix(v, "${file:") && !strings.HasPrefix(v, "${dir:") {
				t.Errorf("%s = %q: not a config-provider reference", k, v)
			}
		}
	}
	if got := c["slot.name"]; got != "shardflow_"+s.ID {
		t.Errorf("slot.name %q", got)
	}
	if got, want := c["topic.prefix"], "shardflow."+s.ID; got != want {
		t.Errorf("topic.prefix %q, want %q", got, want)
	}
}

func TestSecretsFile(t *testing.T) {
	b, err := connector.SecretsFile("s00", "postgres://shardflow_replication:p%3Aw@127.0.0.1:55400/shop?sslmode=disable")
	if err != nil {
		t.Fatal(err)
	}
	for _, line := range []string{"hostname=127.0.0.1", "port=55400", "user=shardflow_replication", `password=p\:w`, "dbname=shop"} {
		if !strings.Contains(string(b), line+"\n") {
			t.Errorf("secrets file lacks %q:\n%s", line, b)
		}
	}
	_, err = connector.SecretsFile("s00", "host=x password=hunter2")
	if err == nil || strings.Contains(err.Error(), "hunter2") {
		t.Errorf("bad DSN: err %v (must fail without echoing the DSN)", err)
	}
}

func TestTopicPattern(t *testing.T) {
	re := connector.TopicPattern("shardflow", []string{"orders", "order_items", "payments"})
	for topic, want := range map[string]bool{
		"shardflow.s00.public.orders":           true,
		"shardflow.s63.public.order_items":      true,
		"shardflow.s00.public.shardflow_signal": false,
		"__debezium-heartbeat.shardflow.s00":    false,
		"shardflow.s00.public.ordersx":          false,
	} {
		if got := regexpMatch(re, topic); got != want {
			t.Errorf("%s ~ %s = %v, want %v", topic, re, got, want)
		}
	}
}

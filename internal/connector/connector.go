// Package connector renders one Debezium PostgreSQL connector per shard from the
// registry and reconciles them with a Kafka Connect cluster over its REST API: plan
// (the difference between the rendered config and GET /connectors/<name>/config) and
// apply (an idempotent PUT /connectors/<name>/config of the connectors that differ).
//
// A rendered config holds no credential. Connection settings are references the
// worker resolves with its FileConfigProvider:
//
//	${file:secrets/<shard>.properties:hostname|port|user|password|dbname}
//
// relative to the worker's working directory; SecretsFile renders that file from the
// shard's replication DSN (docs/cdc.md, "Secrets"). The tokenize transform's key is
// ${dir:tokenizer:<tokenizer.key.k8s_key>}, one file per key id in the worker's
// tokenizer/ directory (the tokenizer secret mounted there, docs/pci.md).
package connector

import (
	"bytes"
	"encoding/json"
	"fmt"
	"net/url"
	"os"
	"path/filepath"
	"regexp"
	"sort"
	"strings"

	"github.com/shopsphere/shardflow/internal/genfile"
	"github.com/shopsphere/shardflow/internal/registry"
)

// Fixed names shared by the fleet's schema (internal/fleet/schema.sql), the connectors
// and the consumer.
const (
	// Publication is created by the fleet's schema on every shard (the replication role
	// does not own the tables, so Debezium must not try to create it).
	Publication = "shardflow_cdc"
	// HeartbeatTable is written by heartbeat.action.query so an idle shard's slot still
	// advances (its WAL is released).
	HeartbeatTable = "shardflow_heartbeat"
	// SignalTable drives incremental snapshots (backfills without locks).
	SignalTable = "shardflow_signal"
	// Schema is the PostgreSQL schema of the captured tables.
	Schema = "public"
	// HeartbeatInterval is how often Debezium runs the heartbeat query.
	HeartbeatIntervalMS = 10000
	// SecretsDir is where the worker finds SecretsFile outputs, relative to its working
	// directory.
	SecretsDir = "secrets"
	// TokenizerDir is where the worker finds the tokenizer key files, relative to its
	// working directory: the tokenizer secret (tokenizer.key.k8s_secret) mounted there.
	TokenizerDir = "tokenizer"
	// TransformClass is the Connect transform that applies the PCI policies before Kafka
	// (docker/connect/tokenize).
	TransformClass = "com.shopsphere.shardflow.connect.Tokenize"
)

// TokenizerKeyFile is the file, in TokenizerDir, that holds the key of tok's key id:
// tokenizer.key.k8s_key (the secret's key, so a rotation's new entry is a new file and
// the id and the key always change together, decision 0014), "key" when none is set.
func TokenizerKeyFile(tok registry.Tokenizer) string {
	if tok.Key.K8sKey != "" {
		return tok.Key.K8sKey
	}
	return "key"
}

// WriteTokenizerKey writes key into dir/TokenizerKeyFile(tok) with mode 0600 (dir made
// 0700) and returns the file's path: a local worker's tokenizer directory, as the
// mounted secret is in production. The key is the key variable's bytes, unchanged (no
// newline added), as the batch path reads it.
func WriteTokenizerKey(dir string, tok registry.Tokenizer, key string) (string, error) {
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return "", err
	}
	p := filepath.Join(dir, TokenizerKeyFile(tok))
	if err := os.WriteFile(p, []byte(key), 0o600); err != nil {
		return "", err
	}
	return p, os.Chmod(p, 0o600)
}

// TokenizedColumns are the transform's columns setting: "<table>.<column>:<policy>"
// for every column whose policy changes its value (token, last4, bin, redact), sorted.
func TokenizedColumns(reg *registry.Registry) []string {
	var out []string
	for _, t := range reg.Tables {
		for _, c := range t.Columns {
			switch c.PCI {
			case registry.PCIToken, registry.PCILast4, registry.PCIBIN, registry.PCIRedact:
				out = append(out, t.Name+"."+c.Name+":"+string(c.PCI))
			}
		}
	}
	sort.Strings(out)
	return out
}

// Name is the connector name of a shard: "shardflow-<shard>".
func Name(shard string) string { return "shardflow-" + shard }

// ShardOfName returns the shard of a connector name, or false for a connector this
// package does not manage.
func ShardOfName(name string) (string, bool) {
	s, ok := strings.CutPrefix(name, "shardflow-")
	return s, ok && s != ""
}

// TopicPrefix is Debezium's topic.prefix of a shard: "<kafka.topic_prefix>.<shard>".
func TopicPrefix(prefix, shard string) string { return prefix + "." + shard }

// Topic is the change topic of one table on one shard:
// "<kafka.topic_prefix>.<shard>.public.<table>".
func Topic(prefix, shard, table string) string {
	return TopicPrefix(prefix, shard) + "." + Schema + "." + table
}

// TopicPattern matches the change topics of every shard, present and future, for the
// given tables: the consumer subscribes with it, so a new shard's topics are picked up
// without a configuration change. Submatch 1 is the shard, 2 the table.
func TopicPattern(prefix string, tables []string) string {
	qs := make([]string, len(tables))
	for i, t := range tables {
		qs[i] = regexp.QuoteMeta(t)
	}
	sort.Strings(qs)
	return "^" + regexp.QuoteMeta(prefix) + `\.([a-z0-9][a-z0-9_-]*)\.` + Schema + `\.(` + strings.Join(qs, "|") + `)$`
}

// SlotName is the replication slot of a shard: "shardflow_<shard>" with characters
// PostgreSQL does not allow in slot names replaced by '_'.
func SlotName(shard string) string {
	var b strings.Builder
	b.WriteString("shardflow_")
	for _, r := range strings.ToLower(shard) {
		if (r >= 'a' && r <= 'z') || (r >= '0' && r <= '9') || r == '_' {
			b.WriteRune(r)
		} else {
			b.WriteByte('_')
		}
	}
	return b.String()
}

// Config is one connector's configuration as Kafka Connect stores it (string values).
type Config map[string]string

// JSON renders c with sorted keys, two-space indent and a final newline (the committed
// form under docker/connect/connectors/).
func (c Config) JSON() []byte {
	var buf bytes.Buffer
	enc := json.NewEncoder(&buf)
	enc.SetIndent("", "  ")
	enc.SetEscapeHTML(false)
	_ = enc.Encode(map[string]string(c)) // encoding/json sorts map keys
	return buf.Bytes()
}

// Managed reports whether the registry wants a connector for s: every shard that is
// not retired (onboarding shards are captured before their cutover so they are caught
// up when they start owning buckets).
func Managed(s registry.Shard) bool { return s.State != registry.StateRetired }

// SignalColumns are the signal table's columns (internal/fleet/schema.sql), as
// Debezium's source signal channel reads them.
var SignalColumns = []string{"id", "type", "data"}

// Render returns the connector config of shard s. topicPrefix is the environment's
// kafka.topic_prefix.
func Render(reg *registry.Registry, topicPrefix string, s registry.Shard) (Config, error) {
	if topicPrefix == "" {
		return nil, fmt.Errorf("render connector %s: kafka.topic_prefix is empty", s.ID)
	}
	secret := func(key string) string {
		return fmt.Sprintf("${file:%s/%s.properties:%s}", SecretsDir, s.ID, key)
	}
	var tables, included []string
	for _, t := range reg.Tables {
		tables = append(tables, regexp.QuoteMeta(Schema+"."+t.Name))
		for _, c := range t.Landed() {
			included = append(included, regexp.QuoteMeta(Schema+"."+t.Name+"."+c.Name))
		}
	}
	tables = append(tables, regexp.QuoteMeta(Schema+"."+SignalTable))
	// the column filter applies to the signal table too: without its three columns a
	// signal arrives empty and is discarded (debezium/dbz#2280)
	for _, c := range SignalColumns {
		included = append(included, regexp.QuoteMeta(Schema+"."+SignalTable+"."+c))
	}
	sort.Strings(included)

	c := Config{
		"name":            Name(s.ID),
		"connector.class": "io.debezium.connector.postgresql.PostgresConnector",
		"tasks.max":       "1",

		"database.hostname": secret("hostname"),
		"database.port":     secret("port"),
		"database.user":     secret("user"),
		"database.password": secret("password"),
		"database.dbname":   secret("dbname"),

		"plugin.name":                 "pgoutput",
		"slot.name":                   SlotName(s.ID),
		"publication.name":            Publication,
		"publication.autocreate.mode": "disabled",
		"topic.prefix":                TopicPrefix(topicPrefix, s.ID),
		"schema.include.list":         Schema,
		"table.include.list":          strings.Join(tables, ","),
		// Only the columns shards.yaml lands leave the shard: card verification codes and
		// expiry dates (policy drop) never do, nor does a column the shards have and
		// shards.yaml does not declare yet (it may hold PCI data;
		// docs/runbooks/schema-change.md).
		"column.include.list": strings.Join(included, ","),
		// New shards start with their existing rows ('r' events), then stream.
		"snapshot.mode": "initial",

		// An idle shard still advances its slot (otherwise its WAL is retained).
		"heartbeat.interval.ms":   fmt.Sprint(HeartbeatIntervalMS),
		"heartbeat.action.query":  "INSERT INTO " + Schema + "." + HeartbeatTable + " (id, beat_at) VALUES (1, now()) ON CONFLICT (id) DO UPDATE SET beat_at = excluded.beat_at",
		"signal.data.collection":  Schema + "." + SignalTable,
		"signal.enabled.channels": "source",

		// Values as the consumer decodes them: plain JSON envelopes, no inline schema
		// (types come from shards.yaml); timestamps as ISO-8601 strings.
		"key.converter":                  "org.apache.kafka.connect.json.JsonConverter",
		"key.converter.schemas.enable":   "false",
		"value.converter":                "org.apache.kafka.connect.json.JsonConverter",
		"value.converter.schemas.enable": "false",
		"time.precision.mode":            "adaptive_time_microseconds",
		"decimal.handling.mode":          "string",
		// Deletes carry the whole old row (REPLICA IDENTITY FULL); no tombstones.
		"tombstones.on.delete": "false",
		"skipped.operations":   "t",

		// One partition per table and shard keeps each shard's changes of a table in
		// commit order.
		"topic.creation.default.partitions":         "1",
		"topic.creation.default.replication.factor": "-1",
		"topic.creation.default.cleanup.policy":     "delete",

		// Larger batches between Debezium's queue and Connect (defaults 2048 / 8192).
		"max.batch.size": "8192",
		"max.queue.size": "32768",

		"slot.drop.on.stop":            "false",
		"provide.transaction.metadata": "false",
		// Debezium's context headers (__debezium.context.*: the connector's and task's
		// names, on every record) are read by nobody: the consumer takes the shard and table
		// from the topic; without them the worker converts and sends less per event.
		"extended.headers.enabled": "false",
	}
	// PCI values are tokenized in the worker, before the converter writes them to Kafka
	// (docs/pci.md); the key is a reference the worker resolves, never a value here.
	if cols := TokenizedColumns(reg); len(cols) > 0 {
		c["transforms"] = "tokenize"
		c["transforms.tokenize.type"] = TransformClass
		c["transforms.tokenize.key.id"] = reg.Tokenizer.KeyID
		c["transforms.tokenize.key"] = fmt.Sprintf("${dir:%s:%s}", TokenizerDir, TokenizerKeyFile(reg.Tokenizer))
		c["transforms.tokenize.columns"] = strings.Join(cols, ",")
	}
	return c, nil
}

// RenderAll returns the configs of every managed shard, by connector name.
func RenderAll(reg *registry.Registry, topicPrefix string) (map[string]Config, error) {
	out := map[string]Config{}
	for _, s := range reg.Shards {
		if !Managed(s) {
			continue
		}
		c, err := Render(reg, topicPrefix, s)
		if err != nil {
			return nil, err
		}
		out[Name(s.ID)] = c
	}
	return out, nil
}

// SecretsFile renders the properties file the worker resolves a shard's connection
// references from, out of its replication DSN (a postgres:// URL). The result holds a
// password: write it with mode 0600, never log it.
func SecretsFile(shard, dsn string) ([]byte, error) {
	u, err := url.Parse(dsn)
	if err != nil || (u.Scheme != "postgres" && u.Scheme != "postgresql") {
		// never echo the DSN: it holds the password
		return nil, fmt.Errorf("connector secrets %s: the replication DSN is not a postgres:// URL", shard)
	}
	pw, _ := u.User.Password()
	port := u.Port()
	if port == "" {
		port = "5432"
	}
	db := strings.TrimPrefix(u.Path, "/")
	if u.Hostname() == "" || u.User.Username() == "" || db == "" {
		return nil, fmt.Errorf("connector secrets %s: the replication DSN lacks host, user or database", shard)
	}
	var b strings.Builder
	fmt.Fprintf(&b, "# connection of shard %s for Debezium (generated by shardctl connectors secrets)\n", shard)
	for _, kv := range [][2]string{{"hostname", u.Hostname()}, {"port", port}, {"user", u.User.Username()}, {"password", pw}, {"dbname", db}} {
		fmt.Fprintf(&b, "%s=%s\n", kv[0], escapeProperty(kv[1]))
	}
	return []byte(b.String()), nil
}

func escapeProperty(v string) string {
	r := strings.NewReplacer(`\`, `\\`, "\n", `\n`, "\r", `\r`, "=", `\=`, ":", `\:`, "#", `\#`, "!", `\!`)
	return r.Replace(v)
}

// Files renders every managed shard's config as "<shard>.json" → its JSON, the
// generated set committed under dir (docker/connect/connectors/). The set owns every
// *.json of dir: a retired shard's config is stale.
func Files(reg *registry.Registry, topicPrefix, dir string) (genfile.Set, error) {
	cs, err := RenderAll(reg, topicPrefix)
	if err != nil {
		return genfile.Set{}, err
	}
	set := genfile.Set{Name: "Debezium connectors", Dir: dir, Owned: "*.json"}
	for name, c := range cs {
		s, _ := ShardOfName(name)
		set.Files = append(set.Files, genfile.File{Path: s + ".json", Data: c.JSON()})
	}
	sort.Slice(set.Files, func(i, j int) bool { return set.Files[i].Path < set.Files[j].Path })
	return set, nil
}

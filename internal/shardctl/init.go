package shardctl

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"gopkg.in/yaml.v3"

	"github.com/shopsphere/shardflow/internal/command"
	"github.com/shopsphere/shardflow/internal/exitcode"
	"github.com/shopsphere/shardflow/internal/registry"
)

func init() {
	register(Command{
		Name:    "init",
		Summary: "write a shards.yaml derived from another (N shards, shorter windows)",
		Usage:   "[--shards N] [--buckets 4096] [--window D] [--safety-lag D] [--from FILE] [--out FILE]",
		Help: `Writes a shards.yaml derived from the registry given by --from (default:
$SHARDFLOW_REGISTRY or ./shards.yaml), for local fleets, demos and tests.

With --shards N, the shards are replaced by N shards, s00 ... s<N-1>, each owning an
even, contiguous share of the buckets, with no moves (epoch 0); each shard's DSNs are
referenced as SHARDFLOW_<ID>_EXTRACT_DSN and SHARDFLOW_<ID>_REPLICATION_DSN (Kubernetes
secret shard-<id>). Without it, the base's shards and moves are kept.
--window and --safety-lag replace extract.window and extract.safety_lag, so that a
demo's windows close within a minute of its traffic. Everything else (tables and their
PCI policies, SLAs, tokenizer, environments, comments) is copied.

The output is validated before it is written:

  shardctl init --shards 16 --out var/shards-16.yaml
  SHARDFLOW_REGISTRY=var/shards-16.yaml shardctl fleet up
  shardctl init --window 1m --safety-lag 5s --out var/demo/shards.yaml

It is not how a production fleet grows: there, shards are added by moves (docs/shards-yaml.md).`,
		Run: runInit,
	})
}

func runInit(_ context.Context, env Env, args []string) error {
	c := commands["init"]
	fs := newFlags(c, env)
	n := fs.Int("shards", 0, "number of shards (1-1000; default: keep the base's shards and moves)")
	buckets := fs.Int("buckets", 0, "number of virtual buckets, with --shards (default: the base registry's, 4096)")
	window := fs.Duration("window", 0, "extract.window (default: the base's)")
	lag := fs.Duration("safety-lag", 0, "extract.safety_lag (default: the base's)")
	from := fs.String("from", env.Registry, "registry to copy tables and settings from")
	out := fs.String("out", "", "file to write (default: stdout)")
	if err := command.Parse(fs, args); err != nil {
		return err
	}
	if err := noArgs(fs, "init"); err != nil {
		return err
	}
	base, err := os.ReadFile(*from)
	if err != nil {
		return exitcode.Wrap(exitcode.Usage, fmt.Errorf("init: read base registry: %w", err))
	}
	if *n == 0 && *buckets != 0 {
		return exitcode.Errorf(exitcode.Usage, "init: --buckets needs --shards (the base's shards own its buckets)")
	}
	text, err := DeriveRegistry(base, InitOptions{Shards: *n, Buckets: *buckets, Window: *window, SafetyLag: *lag})
	if err != nil {
		return exitcode.Wrap(exitcode.Usage, err)
	}
	if *out == "" {
		_, err = env.Stdout.Write(text)
		return err
	}
	if dir := filepath.Dir(*out); dir != "." {
		if err := os.MkdirAll(dir, 0o755); err != nil {
			return fmt.Errorf("init: %w", err)
		}
	}
	if err := os.WriteFile(*out, text, 0o644); err != nil {
		return fmt.Errorf("init: %w", err)
	}
	r, err := registry.Check(bytes.NewReader(text))
	if err != nil {
		return err
	}
	fmt.Fprintf(env.Stderr, "wrote %s: %d shards, %d moves, window %s, safety lag %s\n",
		*out, len(r.Shards), len(r.Moves), r.Extract.Window.Duration, r.Extract.SafetyLag.Duration)
	return nil
}

// InitOptions says how DeriveRegistry changes its base. Zero fields keep the base's value.
type InitOptions struct {
	Shards    int           // replace the shards by this many, an even split with no moves
	Buckets   int           // with Shards: the bucket count
	Window    time.Duration // extract.window
	SafetyLag time.Duration // extract.safety_lag
}

// GenerateRegistry returns base (a shards.yaml) with its shards replaced by n shards
// owning even, contiguous bucket ranges, its moves removed, and, when buckets > 0, its
// bucket count set. The result is validated.
func GenerateRegistry(base []byte, n, buckets int) ([]byte, error) {
	if n < 1 || n > 1000 {
		return nil, fmt.Errorf("init: --shards must be between 1 and 1000, not %d", n)
	}
	return DeriveRegistry(base, InitOptions{Shards: n, Buckets: buckets})
}

// DeriveRegistry returns base (a shards.yaml) changed as o says. The result is validated.
func DeriveRegistry(base []byte, o InitOptions) ([]byte, error) {
	if o.Shards < 0 || o.Shards > 1000 {
		return nil, fmt.Errorf("init: --shards must be between 1 and 1000, not %d", o.Shards)
	}
	if o.Window < 0 || o.SafetyLag < 0 {
		return nil, fmt.Errorf("init: --window and --safety-lag must be positive")
	}
	var doc yaml.Node
	if err := yaml.Unmarshal(base, &doc); err != nil {
		return nil, fmt.Errorf("init: base registry: %w", err)
	}
	if doc.Kind != yaml.DocumentNode || len(doc.Content) != 1 || doc.Content[0].Kind != yaml.MappingNode {
		return nil, fmt.Errorf("init: base registry is not a mapping")
	}
	root := doc.Content[0]
	var flags, what []string
	if o.Shards > 0 {
		b, err := splitShards(root, o.Shards, o.Buckets)
		if err != nil {
			return nil, err
		}
		flags = append(flags, fmt.Sprintf("--shards %d", o.Shards))
		what = append(what, fmt.Sprintf("%d shards, an even split of %d buckets, no moves", o.Shards, b))
	}
	if o.Window > 0 || o.SafetyLag > 0 {
		ex := mapValue(root, "extract")
		if ex == nil || ex.Kind != yaml.MappingNode {
			return nil, fmt.Errorf("init: base registry has no extract settings")
		}
		if o.Window > 0 {
			setMapValue(ex, "window", scalar(o.Window.String()))
			flags = append(flags, "--window "+o.Window.String())
			what = append(what, "extract.window "+o.Window.String())
		}
		if o.SafetyLag > 0 {
			setMapValue(ex, "safety_lag", scalar(o.SafetyLag.String()))
			flags = append(flags, "--safety-lag "+o.SafetyLag.String())
			what = append(what, "extract.safety_lag "+o.SafetyLag.String())
		}
	}
	if len(what) > 0 {
		doc.HeadComment = fmt.Sprintf("Generated by `shardctl init %s`: %s.\n"+
			"Tables and settings are copied from the base registry.\n%s", strings.Join(flags, " "), strings.Join(what, "; "), doc.HeadComment)
	}

	var buf bytes.Buffer
	enc := yaml.NewEncoder(&buf)
	enc.SetIndent(2)
	if err := enc.Encode(&doc); err != nil {
		return nil, fmt.Errorf("init: encode: %w", err)
	}
	if err := enc.Close(); err != nil {
		return nil, fmt.Errorf("init: encode: %w", err)
	}
	if _, err := registry.Check(bytes.NewReader(buf.Bytes())); err != nil {
		return nil, fmt.Errorf("init: the generated registry is not valid:\n%w", err)
	}
	return buf.Bytes(), nil
}

// splitShards replaces root's shards by n shards owning even, contiguous bucket ranges
// and removes its moves; buckets > 0 sets the bucket count. It returns the bucket count.
func splitShards(root *yaml.Node, n, buckets int) (int, error) {
	routing := mapValue(root, "routing")
	if routing == nil {
		return 0, fmt.Errorf("init: base registry has no routing")
	}
	bn := mapValue(routing, "buckets")
	if bn == nil {
		return 0, fmt.Errorf("init: base registry has no routing.buckets")
	}
	if buckets > 0 {
		bn.Value = strconv.Itoa(buckets)
	}
	b, err := strconv.Atoi(bn.Value)
	if err != nil || b < n {
		return 0, fmt.Errorf("init: %s buckets cannot be split over %d shards", bn.Value, n)
	}

	width := len(strconv.Itoa(n - 1))
	if width < 2 {
		width = 2
	}
	shards := &yaml.Node{Kind: yaml.SequenceNode}
	for i := 0; i < n; i++ {
		id := fmt.Sprintf("s%0*d", width, i)
		up := strings.ToUpper(id)
		ref := func(kind, key string) *yaml.Node {
			return flowMap("env", "SHARDFLOW_"+up+"_"+kind+"_DSN", "k8s_secret", "shard-"+id, "k8s_key", key)
		}
		lo, hi := i*b/n, (i+1)*b/n-1
		shards.Content = append(shards.Content, blockMap(
			"id", scalar(id),
			"state", scalar(string(registry.StateActive)),
			"connection", blockMap("extract", ref("EXTRACT", "extract-dsn"), "replication", ref("REPLICATION", "replication-dsn")),
			"buckets", &yaml.Node{Kind: yaml.SequenceNode, Style: yaml.FlowStyle, Content: []*yaml.Node{
				{Kind: yaml.ScalarNode, Style: yaml.DoubleQuotedStyle, Value: registry.Range{Lo: lo, Hi: hi}.String()}}},
		))
	}
	setMapValue(root, "shards", shards)
	setMapValue(root, "moves", &yaml.Node{Kind: yaml.SequenceNode, Style: yaml.FlowStyle})
	return b, nil
}

func scalar(v string) *yaml.Node { return &yaml.Node{Kind: yaml.ScalarNode, Value: v} }

func flowMap(kv ...string) *yaml.Node {
	m := &yaml.Node{Kind: yaml.MappingNode, Style: yaml.FlowStyle}
	for i := 0; i+1 < len(kv); i += 2 {
		m.Content = append(m.Content, scalar(kv[i]), scalar(kv[i+1]))
	}
	return m
}

func blockMap(kv ...any) *yaml.Node {
	m := &yaml.Node{Kind: yaml.MappingNode}
	for i := 0; i+1 < len(kv); i += 2 {
		m.Content = append(m.Content, scalar(kv[i].(string)), kv[i+1].(*yaml.Node))
	}
	return m
}

func mapValue(m *yaml.Node, key string) *yaml.Node {
	for i := 0; i+1 < len(m.Content); i += 2 {
		if m.Content[i].Value == key {
			return m.Content[i+1]
		}
	}
	return nil
}

// setMapValue replaces key's value, keeping the key's comments, or appends the key.
func setMapValue(m *yaml.Node, key string, v *yaml.Node) {
	for i := 0; i+1 < len(m.Content); i += 2 {
		if m.Content[i].Value == key {
			m.Content[i+1] = v
			return
		}
	}
	m.Content = append(m.Content, scalar(key), v)
}

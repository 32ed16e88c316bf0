package extracttest

import (
	"bytes"
	"fmt"
	"regexp"

	"github.com/shopsphere/shardflow/internal/registry"
)

var (
	shardsSection = regexp.MustCompile(`(?ms)^shards:\n.*?\n\n`)
	movesSection  = regexp.MustCompile(`(?ms)^moves:\n.*?\n\n`)
	shardBlock    = regexp.MustCompile(`(?ms)^  - id: (\S+)\n.*?(?:\n(?:  - id: |\n)|\z)`)
)

// OneShard returns the registry of shardsYAML (the text of shards.yaml) reduced to the
// shard id, owning every bucket and with no moves: one cluster takes all the traffic
// internal/workload writes, as on a fleet of one. Tables, extract settings and the
// tokenizer are the file's own. For benchmarks and tests of one shard's cost.
func OneShard(shardsYAML []byte, id string) (*registry.Registry, error) {
	sec := shardsSection.Find(shardsYAML)
	if sec == nil {
		return nil, fmt.Errorf("one-shard registry: no shards: section")
	}
	var block []byte
	for _, loc := range shardBlock.FindAllSubmatchIndex(sec, -1) {
		if string(sec[loc[2]:loc[3]]) == id {
			block = sec[loc[0]:loc[1]]
			break
		}
	}
	if block == nil {
		return nil, fmt.Errorf("one-shard registry: shard %s is not in shards.yaml", id)
	}
	block = bytes.TrimSuffix(bytes.TrimSuffix(block, []byte("  - id: ")), []byte("\n"))
	block = regexp.MustCompile(`(?m)^    buckets: .*$`).ReplaceAll(block, []byte(`    buckets: ["0-4095"]`))
	out := bytes.Replace(shardsYAML, sec, append(append([]byte("shards:\n"), bytes.TrimRight(block, "\n")...), "\n\n"...), 1)
	out = movesSection.ReplaceAll(out, []byte("moves: []\n\n"))
	reg, err := registry.Check(bytes.NewReader(out))
	if err != nil {
		return nil, fmt.Errorf("one-shard registry of %s: %w", id, err)
	}
	return reg, nil
}

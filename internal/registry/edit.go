package registry

import (
	"bytes"
	"fmt"
	"strings"
	"time"

	"gopkg.in/yaml.v3"
)

// The edits `shardctl move` makes to shards.yaml: the changes a pull request carries.
// They are made on the text, line by line, so comments, blank lines and the file's
// layout stay as the reviewer wrote them; the result is checked like any edit.

// DeclareMove appends m to moves as a pending move (no cutover, no fence) and, for a
// split, the new shard (state onboarding, no buckets) after the last shard. It returns
// the edited file, checked.
func DeclareMove(src []byte, m Move, add *Shard) ([]byte, *Registry, error) {
	doc, err := parseNode(src)
	if err != nil {
		return nil, nil, err
	}
	lines := splitLines(src)
	var ins []insertion
	if add != nil {
		shards := mapValue(doc, "shards")
		if shards == nil || shards.Kind != yaml.SequenceNode || len(shards.Content) == 0 {
			return nil, nil, fmt.Errorf("declare move: shards.yaml has no shards list")
		}
		last := shards.Content[len(shards.Content)-1]
		ind := strings.Repeat(" ", last.Column-3)
		c := add.Connection
		block := []string{
			fmt.Sprintf("%s- id: %s", ind, add.ID),
			fmt.Sprintf("%s  state: %s", ind, StateOnboarding),
			fmt.Sprintf("%s  connection:", ind),
			fmt.Sprintf("%s    extract: %s", ind, secretText(c.Extract)),
			fmt.Sprintf("%s    replication: %s", ind, secretText(c.Replication)),
		}
		if c.Admin != (SecretRef{}) {
			block = append(block, fmt.Sprintf("%s    admin: %s", ind, secretText(c.Admin)))
		}
		ins = append(ins, insertion{after: lastLine(last), lines: block})
	}
	entry := []string{
		fmt.Sprintf("  - epoch: %d", m.Epoch),
		fmt.Sprintf("    buckets: %s", rangesText(m.Buckets)),
		fmt.Sprintf("    from: %s", m.From),
		fmt.Sprintf("    to: %s", m.To),
		"    # pending: `shardctl move cutover` records the fence here",
	}
	moves := mapValue(doc, "moves")
	switch {
	case moves != nil && moves.Kind == yaml.SequenceNode && len(moves.Content) > 0:
		ins = append(ins, insertion{after: lastLine(moves.Content[len(moves.Content)-1]), lines: entry})
	case moves != nil:
		// `moves: []` or an empty key: replace its line
		k := mapKey(doc, "moves")
		lines[k.Line-1] = "moves:"
		ins = append(ins, insertion{after: k.Line, lines: entry})
	default:
		shards := mapValue(doc, "shards")
		ins = append(ins, insertion{after: lastLine(shards), lines: append([]string{"", "moves:"}, entry...)})
	}
	out := applyInsertions(lines, ins)
	r, err := Check(bytes.NewReader(out))
	if err != nil {
		return nil, nil, fmt.Errorf("declare move: the edited shards.yaml is invalid:\n%w", err)
	}
	return out, r, nil
}

// RecordMove records the fence of the pending move with the given epoch: its markers,
// and the buckets handed over in shards[].buckets (the target becomes active; a source
// left with no buckets becomes draining). It returns the edited file, checked.
func RecordMove(src []byte, epoch int, f Fence) ([]byte, *Registry, error) {
	r, err := Check(bytes.NewReader(src))
	if err != nil {
		return nil, nil, fmt.Errorf("record move: %w", err)
	}
	if epoch < 1 || epoch > len(r.Moves) || !r.Moves[epoch-1].Pending() {
		return nil, nil, fmt.Errorf("record move: move %d is not a pending move of shards.yaml", epoch)
	}
	m := r.Moves[epoch-1]
	doc, err := parseNode(src)
	if err != nil {
		return nil, nil, err
	}
	lines := splitLines(src)
	node := mapValue(doc, "moves").Content[epoch-1]
	// drop the "pending" comment line if the declaration wrote it
	end := lastLine(node)
	if end < len(lines) && strings.Contains(lines[end], "# pending: `shardctl move cutover`") {
		lines[end] = dropLine
	}
	ins := []insertion{{after: end, lines: []string{
		"    fence: # each shard's own clock and WAL at its marker (shardctl move cutover)",
		fmt.Sprintf("      from: {at: %s, lsn: %s}", f.From.At.UTC().Format(time.RFC3339Nano), f.From.LSN),
		fmt.Sprintf("      to: {at: %s, lsn: %s}", f.To.At.UTC().Format(time.RFC3339Nano), f.To.LSN),
	}}}
	shards := mapValue(doc, "shards")
	for i, s := range r.Shards {
		if s.ID != m.From && s.ID != m.To {
			continue
		}
		var bs []int
		for _, rg := range s.Buckets {
			for b := rg.Lo; b <= rg.Hi; b++ {
				if s.ID == m.To || !m.Contains(b) {
					bs = append(bs, b)
				}
			}
		}
		state := s.State
		if s.ID == m.To {
			for _, rg := range m.Buckets {
				for b := rg.Lo; b <= rg.Hi; b++ {
					bs = append(bs, b)
				}
			}
			if state == StateOnboarding {
				state = StateActive
			}
		} else if len(bs) == 0 {
			state = StateDraining
		}
		sn := shards.Content[i]
		if k := mapKey(sn, "state"); k != nil && state != s.State {
			lines[k.Line-1] = replaceValue(lines[k.Line-1], "state", string(state))
		}
		text := rangesText(Ranges(bs))
		if k := mapKey(sn, "buckets"); k != nil {
			lines[k.Line-1] = replaceValue(lines[k.Line-1], "buckets", text)
		} else {
			ind := strings.Repeat(" ", sn.Column-1)
			ins = append(ins, insertion{after: lastLine(sn), lines: []string{ind + "buckets: " + text}})
		}
	}
	out := applyInsertions(lines, ins)
	rec, err := Check(bytes.NewReader(out))
	if err != nil {
		return nil, nil, fmt.Errorf("record move %d: the edited shards.yaml is invalid:\n%w", epoch, err)
	}
	return out, rec, nil
}

const dropLine = "\x00drop"

type insertion struct {
	after int // 1-based line after which the lines go
	lines []string
}

func splitLines(src []byte) []string {
	return strings.Split(strings.TrimSuffix(string(src), "\n"), "\n")
}

func applyInsertions(lines []string, ins []insertion) []byte {
	at := map[int][]string{}
	for _, in := range ins {
		at[in.after] = append(at[in.after], in.lines...)
	}
	var b strings.Builder
	for i, l := range lines {
		if l != dropLine {
			b.WriteString(l + "\n")
		}
		for _, x := range at[i+1] {
			b.WriteString(x + "\n")
		}
	}
	return []byte(b.String())
}

func parseNode(src []byte) (*yaml.Node, error) {
	var doc yaml.Node
	if err := yaml.Unmarshal(src, &doc); err != nil {
		return nil, fmt.Errorf("shards.yaml: %w", err)
	}
	if len(doc.Content) == 0 || doc.Content[0].Kind != yaml.MappingNode {
		return nil, fmt.Errorf("shards.yaml: not a mapping")
	}
	return doc.Content[0], nil
}

func mapKey(m *yaml.Node, key string) *yaml.Node {
	for i := 0; i+1 < len(m.Content); i += 2 {
		if m.Content[i].Value == key {
			return m.Content[i]
		}
	}
	return nil
}

func mapValue(m *yaml.Node, key string) *yaml.Node {
	for i := 0; i+1 < len(m.Content); i += 2 {
		if m.Content[i].Value == key {
			return m.Content[i+1]
		}
	}
	return nil
}

// lastLine is the last line a node's text occupies (1-based).
func lastLine(n *yaml.Node) int {
	l := n.Line
	for _, c := range n.Content {
		if x := lastLine(c); x > l {
			l = x
		}
	}
	return l
}

// replaceValue rewrites "  key: old # comment" as "  key: new # comment".
func replaceValue(line, key, value string) string {
	i := strings.Index(line, key+":")
	if i < 0 {
		return line
	}
	rest := line[i+len(key)+1:]
	comment := ""
	if j := strings.Index(rest, " #"); j >= 0 {
		comment = rest[j:]
	}
	return line[:i] + key + ": " + value + comment
}

func rangesText(rs []Range) string {
	parts := make([]string, len(rs))
	for i, r := range rs {
		parts[i] = `"` + r.String() + `"`
	}
	return "[" + strings.Join(parts, ", ") + "]"
}

func secretText(s SecretRef) string {
	parts := []string{"env: " + s.Env}
	if s.K8sSecret != "" {
		parts = append(parts, "k8s_secret: "+s.K8sSecret, "k8s_key: "+s.K8sKey)
	}
	return "{" + strings.Join(parts, ", ") + "}"
}

// Package capacity sizes a deployment of shardflow for a fleet: from shards.yaml, the
// brief's load figures and the per-core rates this project measured (the committed
// rates file, refreshed by `make bench`), it computes what each component needs at a
// given shard count, naming where every input came from.
package capacity

import (
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"runtime"
	"time"
)

// DefaultRatesFile is the committed rates file, relative to the repository root.
const DefaultRatesFile = "test/bench/rates.json"

// Rate is one measured figure: Value in Unit, measured by the benchmark Bench on the
// machine Machine (cores, as `nproc` says) at At. Reference, when set, is the figure
// the same run measured for the reference it is compared with (COPY TO STDOUT,
// pg_recvlogical, a bare INSERT), in the same unit.
type Rate struct {
	Value     float64 `json:"value"`
	Unit      string  `json:"unit"`
	Reference float64 `json:"reference,omitempty"`
	Bench     string  `json:"bench"`
	Machine   string  `json:"machine,omitempty"`
	At        string  `json:"at"`
	Note      string  `json:"note,omitempty"`
}

// Rates are the measured figures by name (for example "extract_rows_per_s").
type Rates map[string]Rate

// LoadRates reads a rates file. A missing file is an error: capacity is computed from
// measured figures only.
func LoadRates(path string) (Rates, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("rates file: %w (run `make bench` to measure it)", err)
	}
	var f struct {
		Rates Rates `json:"rates"`
	}
	if err := json.Unmarshal(b, &f); err != nil {
		return nil, fmt.Errorf("rates file %s: %w", path, err)
	}
	return f.Rates, nil
}

// UpdateRates merges rs into the rates file at path (created when missing), filling At
// with today's date and Machine with the core count where they are empty, and writes
// it back with its names sorted, so a refresh changes only the figures it measured.
func UpdateRates(path string, rs Rates) error {
	cur, err := LoadRates(path)
	if errors.Is(err, os.ErrNotExist) {
		cur, err = Rates{}, nil
	}
	if err != nil {
		return err
	}
	if cur == nil {
		cur = Rates{}
	}
	for name, r := range rs {
		if r.At == "" {
			r.At = time.Now().UTC().Format(time.DateOnly)
		}
		if r.Machine == "" {
			r.Machine = MachineCores()
		}
		cur[name] = r
	}
	return writeRates(path, cur)
}

func writeRates(path string, rs Rates) error {
	// encoding/json writes a map's keys sorted, so the file's order is stable.
	b, err := json.MarshalIndent(struct {
		Comment string `json:"_comment"`
		Rates   Rates  `json:"rates"`
	}{"measured by `make bench` (each figure names its benchmark); read by `shardctl capacity`", rs}, "", "  ")
	if err != nil {
		return err
	}
	tmp := path + ".tmp"
	if err := os.WriteFile(tmp, append(b, '\n'), 0o644); err != nil {
		return err
	}
	return os.Rename(tmp, path)
}

// MachineCores names the machine a figure was measured on by its core count.
func MachineCores() string { return fmt.Sprintf("%d cores", runtime.NumCPU()) }

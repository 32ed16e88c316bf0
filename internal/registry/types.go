package registry

import (
	"fmt"
	"math"
	"sort"
	"strconv"
	"strings"
	"time"

	"gopkg.in/yaml.v3"
)

// Range is an inclusive range of buckets, written "lo-hi" or "n" in shards.yaml.
type Range struct{ Lo, Hi int }

func (r Range) String() string {
	if r.Lo == r.Hi {
		return strconv.Itoa(r.Lo)
	}
	return fmt.Sprintf("%d-%d", r.Lo, r.Hi)
}

// Contains reports whether bucket b is in r.
func (r Range) Contains(b int) bool { return b >= r.Lo && b <= r.Hi }

// ParseRange reads "lo-hi" or "n".
func ParseRange(s string) (Range, error) {
	s = strings.TrimSpace(s)
	lo, hi, ok := strings.Cut(s, "-")
	if !ok {
		hi = lo
	}
	l, err1 := strconv.Atoi(strings.TrimSpace(lo))
	h, err2 := strconv.Atoi(strings.TrimSpace(hi))
	if err1 != nil || err2 != nil || l < 0 || h < l {
		return Range{}, fmt.Errorf("%q is not a bucket range (want \"lo-hi\" with 0 <= lo <= hi, or \"n\")", s)
	}
	return Range{l, h}, nil
}

// UnmarshalYAML reads a range from a string or an integer.
func (r *Range) UnmarshalYAML(n *yaml.Node) error {
	if n.Kind != yaml.ScalarNode {
		return fmt.Errorf("line %d: a bucket range is a string like \"0-1023\"", n.Line)
	}
	v, err := ParseRange(n.Value)
	if err != nil {
		return fmt.Errorf("line %d: %w", n.Line, err)
	}
	*r = v
	return nil
}

// MarshalYAML writes a range as "lo-hi".
func (r Range) MarshalYAML() (any, error) { return r.String(), nil }

// Ranges turns a sorted set of buckets into the fewest inclusive ranges.
func Ranges(buckets []int) []Range {
	sort.Ints(buckets)
	var out []Range
	for _, b := range buckets {
		if len(out) > 0 && out[len(out)-1].Hi+1 == b {
			out[len(out)-1].Hi = b
			continue
		}
		if len(out) > 0 && out[len(out)-1].Hi == b {
			continue
		}
		out = append(out, Range{b, b})
	}
	return out
}

// FormatRanges writes ranges as "0-9,12".
func FormatRanges(rs []Range) string {
	parts := make([]string, len(rs))
	for i, r := range rs {
		parts[i] = r.String()
	}
	return strings.Join(parts, ",")
}

// Duration is a time.Duration written as "1h", "5m" in shards.yaml.
type Duration struct{ time.Duration }

// UnmarshalYAML reads a Go duration string.
func (d *Duration) UnmarshalYAML(n *yaml.Node) error {
	v, err := time.ParseDuration(n.Value)
	if err != nil || n.Kind != yaml.ScalarNode {
		return fmt.Errorf("line %d: %q is not a duration (like \"1h\" or \"90s\")", n.Line, n.Value)
	}
	d.Duration = v
	return nil
}

// MarshalYAML writes the duration string.
func (d Duration) MarshalYAML() (any, error) { return d.String(), nil }

// ByteSize is a number of bytes written with a binary unit in shards.yaml: "512MiB",
// "50GiB", "1TiB" (or a plain number of bytes).
type ByteSize int64

var byteUnits = []struct {
	suffix string
	n      int64
}{{"TiB", 1 << 40}, {"GiB", 1 << 30}, {"MiB", 1 << 20}, {"KiB", 1 << 10}, {"B", 1}}

// UnmarshalYAML reads "50GiB".
func (b *ByteSize) UnmarshalYAML(n *yaml.Node) error {
	bad := fmt.Errorf("line %d: %q is not a size (like \"50GiB\" or \"512MiB\")", n.Line, n.Value)
	if n.Kind != yaml.ScalarNode {
		return bad
	}
	v, mult := strings.TrimSpace(n.Value), int64(1)
	for _, u := range byteUnits {
		if strings.HasSuffix(v, u.suffix) {
			v, mult = strings.TrimSpace(strings.TrimSuffix(v, u.suffix)), u.n
			break
		}
	}
	x, err := strconv.ParseInt(v, 10, 64)
	if err != nil || x < 0 || x > math.MaxInt64/mult {
		return bad
	}
	*b = ByteSize(x * mult)
	return nil
}

// String writes the size with the largest unit that divides it.
func (b ByteSize) String() string {
	for _, u := range byteUnits {
		if b != 0 && int64(b)%u.n == 0 {
			return fmt.Sprintf("%d%s", int64(b)/u.n, u.suffix)
		}
	}
	return "0B"
}

// MarshalYAML writes "50GiB".
func (b ByteSize) MarshalYAML() (any, error) { return b.String(), nil }

// ClockTime is a time of day in UTC, written "HH:MM".
type ClockTime struct{ Hour, Minute int }

func (c ClockTime) String() string { return fmt.Sprintf("%02d:%02d", c.Hour, c.Minute) }

// Minutes is the time of day in minutes after midnight.
func (c ClockTime) Minutes() int { return c.Hour*60 + c.Minute }

// UnmarshalYAML reads "HH:MM".
func (c *ClockTime) UnmarshalYAML(n *yaml.Node) error {
	t, err := time.Parse("15:04", n.Value)
	if err != nil || n.Kind != yaml.ScalarNode {
		return fmt.Errorf("line %d: %q is not a UTC time of day (like \"06:00\")", n.Line, n.Value)
	}
	c.Hour, c.Minute = t.Hour(), t.Minute()
	return nil
}

// MarshalYAML writes "HH:MM".
func (c ClockTime) MarshalYAML() (any, error) { return c.String(), nil }

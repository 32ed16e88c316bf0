// Package window is the batch path's unit of work as a value: a half-open interval
// [Start, End) on a table's watermark, its text form, its alignment to the registry's
// extract.window (docs/contracts.md §2) and the parsing of a bound. extract lands
// windows, load loads them, dq and the warehouse check them, and the mains and shardctl
// parse them; none of those needs another's package for the type.
package window

import (
	"fmt"
	"strings"
	"time"
)

// Window is a half-open interval [Start, End) on a table's watermark (updated_at), in UTC.
type Window struct {
	Start, End time.Time
}

// String writes the window as "2026-11-24T10:00Z/2026-11-24T11:00Z".
func (w Window) String() string {
	const f = "2006-01-02T15:04Z07:00"
	s, e := w.Start.UTC(), w.End.UTC()
	if s.Second() != 0 || e.Second() != 0 || s.Nanosecond() != 0 || e.Nanosecond() != 0 {
		return s.Format(time.RFC3339Nano) + "/" + e.Format(time.RFC3339Nano)
	}
	return s.Format(f) + "/" + e.Format(f)
}

// Aligned checks that w is exactly one window of length size aligned to size in UTC
// (docs/contracts.md §2). Only aligned windows have deterministic, non-overlapping keys,
// so a misaligned window could land the same rows twice under two keys.
func (w Window) Aligned(size time.Duration) error {
	if !w.End.After(w.Start) {
		return fmt.Errorf("window %s: end must be after start", w)
	}
	if w.End.Sub(w.Start) != size {
		return fmt.Errorf("window %s: length %s, want extract.window %s", w, w.End.Sub(w.Start), size)
	}
	if w.Start.UTC().Sub(w.Start.UTC().Truncate(size)) != 0 {
		return fmt.Errorf("window %s: start is not aligned to extract.window %s (UTC)", w, size)
	}
	return nil
}

// Parse reads a window bound: RFC3339 with or without seconds ("2026-11-24T10:00Z",
// "2026-11-24T10:00:00Z", "2026-11-24T10:00:00+01:00").
func Parse(s string) (time.Time, error) {
	s = strings.TrimSpace(s)
	for _, layout := range []string{time.RFC3339Nano, "2006-01-02T15:04Z07:00"} {
		if t, err := time.Parse(layout, s); err == nil {
			return t.UTC(), nil
		}
	}
	return time.Time{}, fmt.Errorf("%q is not an RFC3339 time (like 2026-11-24T10:00Z)", s)
}

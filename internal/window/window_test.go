package window

import (
	"testing"
	"time"
)

func TestWindowAligned(t *testing.T) {
	h := time.Hour
	t0 := time.Date(2026, 11, 24, 10, 0, 0, 0, time.UTC)
	if err := (Window{t0, t0.Add(h)}).Aligned(h); err != nil {
		t.Fatal(err)
	}
	for _, w := range []Window{{t0, t0.Add(2 * h)}, {t0.Add(time.Minute), t0.Add(h + time.Minute)}, {t0, t0}} {
		if err := w.Aligned(h); err == nil {
			t.Errorf("%s: aligned, want an error", w)
		}
	}
	if got, err := Parse("2026-11-24T10:00Z"); err != nil || !got.Equal(t0) {
		t.Fatalf("Parse = %v, %v", got, err)
	}
	if got := (Window{t0, t0.Add(h)}).String(); got != "2026-11-24T10:00Z/2026-11-24T11:00Z" {
		t.Fatalf("String = %s", got)
	}
}

package registry

import (
	"fmt"
	"maps"
	"math"
	"slices"
	"strconv"
	"strings"
	"time"

	"gopkg.in/yaml.v3"
)

// Retention says how long landed change data is kept, and where (docs/retention.md):
// Hot in the warehouse's raw tables, Archive in the object store (transitioned to
// ArchiveClass once it leaves the hot period, expired at the end of the archive period).
// Tables override either period where they differ.
type Retention struct {
	Hot     Period `yaml:"hot"`
	Archive Period `yaml:"archive"`
	// ArchiveClass is the S3 storage class landed objects move to after Hot.
	ArchiveClass string `yaml:"archive_class"`
	// NoncurrentDays expires an overwritten or deleted object's old versions (a versioned
	// bucket) this many days after they stop being current.
	NoncurrentDays int `yaml:"noncurrent_days"`
	// AbortMultipartDays aborts an upload that has not completed after this many days
	// (its parts are invisible but billed).
	AbortMultipartDays int `yaml:"abort_multipart_days"`
	// Finance is how long the finance marts (run manifests, pinned inputs, daily
	// versions) are kept in the warehouse: the archive period unless set.
	Finance Period                    `yaml:"finance"`
	Tables  map[string]TableRetention `yaml:"tables"`
}

// TableRetention overrides the periods for one table; a zero period inherits.
type TableRetention struct {
	Hot     Period `yaml:"hot"`
	Archive Period `yaml:"archive"`
}

// ArchiveClasses are the S3 storage classes a lifecycle rule may transition to for an
// archive (S3 API TransitionStorageClass; ONEZONE_IA and STANDARD_IA are not archives).
var ArchiveClasses = []string{"GLACIER_IR", "GLACIER", "DEEP_ARCHIVE"}

// Period is a calendar period written "13mo", "7y" or "400d" in shards.yaml.
type Period struct {
	Years, Months, Days int
}

// ParsePeriod reads "<n>y", "<n>mo" or "<n>d".
func ParsePeriod(s string) (Period, error) {
	s = strings.TrimSpace(s)
	for _, u := range []struct {
		suffix string
		set    func(int) Period
	}{
		{"mo", func(n int) Period { return Period{Months: n} }},
		{"y", func(n int) Period { return Period{Years: n} }},
		{"d", func(n int) Period { return Period{Days: n} }},
	} {
		if v, ok := strings.CutSuffix(s, u.suffix); ok {
			n, err := strconv.Atoi(v)
			if err != nil || n <= 0 || n > 100*366 {
				break
			}
			return u.set(n), nil
		}
	}
	return Period{}, fmt.Errorf("%q is not a period (like \"13mo\", \"7y\" or \"400d\")", s)
}

func (p Period) String() string {
	switch {
	case p.Years > 0:
		return strconv.Itoa(p.Years) + "y"
	case p.Months > 0:
		return strconv.Itoa(p.Months) + "mo"
	case p.Days > 0:
		return strconv.Itoa(p.Days) + "d"
	}
	return ""
}

// IsZero reports an unset period.
func (p Period) IsZero() bool { return p == Period{} }

// Before is the instant p before t, by the calendar (UTC): 13mo before 2027-03-31 is
// 2026-02-28's end of month normalised as time.AddDate does.
func (p Period) Before(t time.Time) time.Time {
	return t.UTC().AddDate(-p.Years, -p.Months, -p.Days)
}

// MaxDays is the most days p can span (a year 366 days, a month 31), so a rule counted
// in days (S3 lifecycle) never acts before the calendar period has passed.
func (p Period) MaxDays() int { return p.Years*366 + p.Months*31 + p.Days }

// MinDays is the fewest days p can span (a year 365 days, a month 28).
func (p Period) MinDays() int { return p.Years*365 + p.Months*28 + p.Days }

// UnmarshalYAML reads a period string.
func (p *Period) UnmarshalYAML(n *yaml.Node) error {
	if n.Kind != yaml.ScalarNode {
		return fmt.Errorf("line %d: a period is a string like \"13mo\"", n.Line)
	}
	v, err := ParsePeriod(n.Value)
	if err != nil {
		return fmt.Errorf("line %d: %w", n.Line, err)
	}
	*p = v
	return nil
}

// MarshalYAML writes the period string.
func (p Period) MarshalYAML() (any, error) { return p.String(), nil }

// DefaultRetention is the brief's: 13 months hot, 7 years archived (Glacier Flexible
// Retrieval), noncurrent versions kept 30 days, incomplete uploads aborted after 7.
func DefaultRetention() Retention {
	return Retention{Hot: Period{Months: 13}, Archive: Period{Years: 7}, ArchiveClass: "GLACIER",
		NoncurrentDays: 30, AbortMultipartDays: 7}
}

// TablePeriods are table's hot and archive periods after its overrides.
func (r Retention) TablePeriods(table string) (hot, archive Period) {
	hot, archive = r.Hot, r.Archive
	if o, ok := r.Tables[table]; ok {
		if !o.Hot.IsZero() {
			hot = o.Hot
		}
		if !o.Archive.IsZero() {
			archive = o.Archive
		}
	}
	return hot, archive
}

// FinancePeriod is how long the finance marts are kept.
func (r Retention) FinancePeriod() Period {
	if r.Finance.IsZero() {
		return r.Archive
	}
	return r.Finance
}

func (r *Registry) validateRetention(errs *Errors) {
	rt := r.Retention
	check := func(path string, hot, archive Period) {
		if hot.IsZero() {
			errs.add(path+".hot", 0, "required (a period like \"13mo\")")
		}
		if archive.IsZero() {
			errs.add(path+".archive", 0, "required (a period like \"7y\")")
		}
		if !hot.IsZero() && !archive.IsZero() && archive.MinDays() <= hot.MaxDays() {
			errs.add(path+".archive", 0, "%s must be longer than hot %s: the archive keeps what the warehouse purges", archive, hot)
		}
	}
	check("retention", rt.Hot, rt.Archive)
	if !slices.Contains(ArchiveClasses, rt.ArchiveClass) {
		errs.add("retention.archive_class", 0, "%q is not an archive storage class (one of %s)", rt.ArchiveClass, strings.Join(ArchiveClasses, ", "))
	}
	if rt.NoncurrentDays < 1 || rt.NoncurrentDays > math.MaxInt16 {
		errs.add("retention.noncurrent_days", 0, "%d is out of range (want 1..32767)", rt.NoncurrentDays)
	}
	if rt.AbortMultipartDays < 1 || rt.AbortMultipartDays > 365 {
		errs.add("retention.abort_multipart_days", 0, "%d is out of range (want 1..365)", rt.AbortMultipartDays)
	}
	if f := rt.FinancePeriod(); !rt.Hot.IsZero() && f.MinDays() < rt.Hot.MaxDays() {
		errs.add("retention.finance", 0, "%s must be at least hot %s: finance runs of the hot period must stay verifiable", f, rt.Hot)
	}
	names := map[string]bool{}
	for _, t := range r.Tables {
		names[t.Name] = true
	}
	for _, name := range slices.Sorted(maps.Keys(rt.Tables)) {
		p := "retention.tables." + name
		if !names[name] {
			errs.add(p, 0, "%q is not a table in tables", name)
			continue
		}
		hot, archive := rt.TablePeriods(name)
		check(p, hot, archive)
	}
}

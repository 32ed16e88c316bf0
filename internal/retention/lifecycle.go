// Package retention applies shards.yaml's retention section (docs/retention.md): the
// object store's lifecycle rules (archive after the hot period, expiry after the
// archive period), the warehouse purge of raw rows past the hot period, each file only
// once it is verified in the archive, and the restore of an archived range into a
// schema of its own.
package retention

import (
	"encoding/json"
	"fmt"
	"sort"
	"strings"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/s3/types"

	"github.com/shopsphere/shardflow/internal/genfile"
	"github.com/shopsphere/shardflow/internal/landing"
	"github.com/shopsphere/shardflow/internal/registry"
)

// RulePrefix starts the ID of every lifecycle rule shardflow manages; apply replaces
// those and keeps a bucket's other rules.
const RulePrefix = "shardflow-"

// Lifecycle is a bucket lifecycle configuration in the shape of S3's API and of
// `aws s3api put-bucket-lifecycle-configuration --lifecycle-configuration file://...`.
type Lifecycle struct {
	Rules []Rule `json:"Rules"`
}

// Rule is one lifecycle rule; only the fields shardflow sets.
type Rule struct {
	ID          string        `json:"ID"`
	Status      string        `json:"Status"`
	Filter      Filter        `json:"Filter"`
	Transitions []Transition  `json:"Transitions,omitempty"`
	Expiration  *Days         `json:"Expiration,omitempty"`
	Noncurrent  *Noncurrent   `json:"NoncurrentVersionExpiration,omitempty"`
	Abort       *AbortUploads `json:"AbortIncompleteMultipartUpload,omitempty"`
}

// Filter selects a rule's objects by key prefix.
type Filter struct {
	Prefix string `json:"Prefix"`
}

// Transition moves objects to StorageClass Days after their creation.
type Transition struct {
	Days         int32  `json:"Days"`
	StorageClass string `json:"StorageClass"`
}

// Days is an expiration Days after creation.
type Days struct {
	Days int32 `json:"Days"`
}

// Noncurrent expires versions NoncurrentDays after another version replaced them.
type Noncurrent struct {
	NoncurrentDays int32 `json:"NoncurrentDays"`
}

// AbortUploads aborts multipart uploads not completed DaysAfterInitiation days on.
type AbortUploads struct {
	DaysAfterInitiation int32 `json:"DaysAfterInitiation"`
}

// ClaimDays is how long a CDC file's claim is kept: a claim is read only by a consumer
// reading its first offset again, which Kafka allows while the topic keeps the record
// (Kafka's default log.retention.hours, 7 days); 30 days leaves room for a long outage.
const ClaimDays = 30

// Rules is the lifecycle shards.yaml asks of a store whose keys start with prefix ("" or
// ending in "/"): per table, its landed data and manifests (one prefix, so both move
// and expire together) go to the archive class after the hot period and expire after
// the archive period, counted in days as S3 does, by the longest calendar reading
// (a month 31 days, a year 366), so S3 never acts before the period has passed; old
// versions expire noncurrent_days after they are replaced; the CDC consumers' claims
// of file ranges (internal/cdc) expire after ClaimDays; and one rule over the whole
// store aborts incomplete multipart uploads.
//
// S3 counts days from an object's creation, not from the data's day: a backfill landed
// today is archived and expired counting from today, which only keeps it longer.
func Rules(reg *registry.Registry, prefix string) Lifecycle {
	rt := reg.Retention
	var out Lifecycle
	tables := make([]string, 0, len(reg.Tables))
	for _, t := range reg.Tables {
		tables = append(tables, t.Name)
	}
	sort.Strings(tables)
	for _, name := range tables {
		hot, archive := rt.TablePeriods(name)
		out.Rules = append(out.Rules, Rule{
			ID:          RulePrefix + "landing-" + name,
			Status:      "Enabled",
			Filter:      Filter{Prefix: prefix + landing.TablePrefix(name)},
			Transitions: []Transition{{Days: int32(hot.MaxDays()), StorageClass: rt.ArchiveClass}},
			Expiration:  &Days{Days: int32(archive.MaxDays())},
			Noncurrent:  &Noncurrent{NoncurrentDays: int32(rt.NoncurrentDays)},
		})
	}
	out.Rules = append(out.Rules, Rule{
		ID:         RulePrefix + "cdc-claims",
		Status:     "Enabled",
		Filter:     Filter{Prefix: prefix + landing.ClaimPrefix},
		Expiration: &Days{Days: ClaimDays},
		Noncurrent: &Noncurrent{NoncurrentDays: int32(rt.NoncurrentDays)},
	})
	out.Rules = append(out.Rules, Rule{
		ID:     RulePrefix + "incomplete-uploads",
		Status: "Enabled",
		Filter: Filter{Prefix: prefix},
		Abort:  &AbortUploads{DaysAfterInitiation: int32(rt.AbortMultipartDays)},
	})
	return out
}

// JSON is the configuration as indented JSON with a final newline (the committed,
// golden-tested file).
func (l Lifecycle) JSON() []byte {
	b, err := json.MarshalIndent(l, "", "  ")
	if err != nil {
		panic(err) // plain structs
	}
	return append(b, '\n')
}

// SDK converts the rules to aws-sdk-go-v2's types.
func (l Lifecycle) SDK() []types.LifecycleRule {
	out := make([]types.LifecycleRule, 0, len(l.Rules))
	for _, r := range l.Rules {
		s := types.LifecycleRule{
			ID:     aws.String(r.ID),
			Status: types.ExpirationStatus(r.Status),
			Filter: &types.LifecycleRuleFilter{Prefix: aws.String(r.Filter.Prefix)},
		}
		for _, t := range r.Transitions {
			s.Transitions = append(s.Transitions, types.Transition{Days: aws.Int32(t.Days), StorageClass: types.TransitionStorageClass(t.StorageClass)})
		}
		if r.Expiration != nil {
			s.Expiration = &types.LifecycleExpiration{Days: aws.Int32(r.Expiration.Days)}
		}
		if r.Noncurrent != nil {
			s.NoncurrentVersionExpiration = &types.NoncurrentVersionExpiration{NoncurrentDays: aws.Int32(r.Noncurrent.NoncurrentDays)}
		}
		if r.Abort != nil {
			s.AbortIncompleteMultipartUpload = &types.AbortIncompleteMultipartUpload{DaysAfterInitiation: aws.Int32(r.Abort.DaysAfterInitiation)}
		}
		out = append(out, s)
	}
	return out
}

// FromSDK reads rules as S3 returns them, in the fields Rule has; a field shardflow
// does not set (tags, sizes, noncurrent transitions) makes the rule differ from any
// generated one, so plan shows it replaced.
func FromSDK(rules []types.LifecycleRule) (Lifecycle, []string) {
	var out Lifecycle
	var extra []string
	for _, s := range rules {
		r := Rule{ID: aws.ToString(s.ID), Status: string(s.Status)}
		if s.Filter != nil {
			r.Filter.Prefix = aws.ToString(s.Filter.Prefix)
			if s.Filter.And != nil || s.Filter.Tag != nil || s.Filter.ObjectSizeGreaterThan != nil || s.Filter.ObjectSizeLessThan != nil {
				extra = append(extra, r.ID+": filter beyond a prefix")
			}
		} else if s.Prefix != nil { //nolint:staticcheck // a legacy rule's top-level prefix
			r.Filter.Prefix = aws.ToString(s.Prefix) //nolint:staticcheck
		}
		for _, t := range s.Transitions {
			r.Transitions = append(r.Transitions, Transition{Days: aws.ToInt32(t.Days), StorageClass: string(t.StorageClass)})
		}
		if e := s.Expiration; e != nil {
			r.Expiration = &Days{Days: aws.ToInt32(e.Days)}
		}
		if n := s.NoncurrentVersionExpiration; n != nil {
			r.Noncurrent = &Noncurrent{NoncurrentDays: aws.ToInt32(n.NoncurrentDays)}
		}
		if a := s.AbortIncompleteMultipartUpload; a != nil {
			r.Abort = &AbortUploads{DaysAfterInitiation: aws.ToInt32(a.DaysAfterInitiation)}
		}
		if len(s.NoncurrentVersionTransitions) > 0 {
			extra = append(extra, r.ID+": noncurrent version transitions")
		}
		out.Rules = append(out.Rules, r)
	}
	return out, extra
}

// Change is one rule's difference between the bucket and shards.yaml.
type Change struct {
	Kind string // add, update, remove, keep (a rule shardflow does not manage)
	ID   string
	From *Rule // the bucket's rule (update, remove, keep)
	To   *Rule // the generated rule (add, update)
}

// Diff compares the bucket's rules with the generated ones. Rules whose ID does not
// start with RulePrefix are not shardflow's: they are kept as they are.
func Diff(current, want Lifecycle) []Change {
	cur := map[string]*Rule{}
	for i := range current.Rules {
		cur[current.Rules[i].ID] = &current.Rules[i]
	}
	var out []Change
	seen := map[string]bool{}
	for i := range want.Rules {
		w := &want.Rules[i]
		seen[w.ID] = true
		switch c, ok := cur[w.ID]; {
		case !ok:
			out = append(out, Change{Kind: "add", ID: w.ID, To: w})
		case !sameRule(*c, *w):
			out = append(out, Change{Kind: "update", ID: w.ID, From: c, To: w})
		}
	}
	for i := range current.Rules {
		c := &current.Rules[i]
		if seen[c.ID] {
			continue
		}
		kind := "keep"
		if strings.HasPrefix(c.ID, RulePrefix) {
			kind = "remove"
		}
		out = append(out, Change{Kind: kind, ID: c.ID, From: c})
	}
	return out
}

// Merge is the configuration apply writes: the generated rules, and the bucket's rules
// that are not shardflow's, unchanged (S3 replaces the whole configuration at once).
func Merge(current []types.LifecycleRule, want Lifecycle) []types.LifecycleRule {
	out := want.SDK()
	for _, r := range current {
		if !strings.HasPrefix(aws.ToString(r.ID), RulePrefix) {
			out = append(out, r)
		}
	}
	return out
}

func sameRule(a, b Rule) bool {
	ja, _ := json.Marshal(a)
	jb, _ := json.Marshal(b)
	return string(ja) == string(jb)
}

// Describe is one line saying what a rule does.
func (r Rule) Describe() string {
	s := fmt.Sprintf("%s (%s) on %q:", r.ID, r.Status, r.Filter.Prefix)
	for _, t := range r.Transitions {
		s += fmt.Sprintf(" to %s after %d days;", t.StorageClass, t.Days)
	}
	if r.Expiration != nil {
		s += fmt.Sprintf(" expire after %d days;", r.Expiration.Days)
	}
	if r.Noncurrent != nil {
		s += fmt.Sprintf(" old versions expire %d days after replaced;", r.Noncurrent.NoncurrentDays)
	}
	if r.Abort != nil {
		s += fmt.Sprintf(" incomplete uploads aborted after %d days;", r.Abort.DaysAfterInitiation)
	}
	return s[:len(s)-1]
}

// StorePrefix is the key prefix of an s3 object store's keys in its bucket ("" or
// ending in "/"), as internal/objstore/s3 writes them.
func StorePrefix(os registry.ObjectStore) string {
	p := strings.Trim(os.Prefix, "/")
	if p == "" {
		return ""
	}
	return p + "/"
}

// Files renders the lifecycle configuration of every environment whose object store is
// an S3 bucket, as dir/lifecycle.<environment>.json (committed, golden-tested; `aws
// s3api put-bucket-lifecycle-configuration` takes it as it is).
func Files(reg *registry.Registry, dir string) genfile.Set {
	set := genfile.Set{Name: "S3 lifecycle", Dir: dir, Owned: "lifecycle.*.json"}
	names := make([]string, 0, len(reg.Environments))
	for n := range reg.Environments {
		names = append(names, n)
	}
	sort.Strings(names)
	for _, n := range names {
		if e := reg.Environments[n]; e.ObjectStore.Kind == "s3" {
			set.Files = append(set.Files, genfile.File{Path: "lifecycle." + n + ".json", Data: Rules(reg, StorePrefix(e.ObjectStore)).JSON()})
		}
	}
	return set
}

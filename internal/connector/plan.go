package connector

import (
	"context"
	"errors"
	"fmt"
	"io"
	"sort"
)

// Action is what apply does to one connector.
type Action string

// Actions.
const (
	Create    Action = "create"    // the cluster has no such connector
	Update    Action = "update"    // its stored config differs
	Unchanged Action = "unchanged" // nothing to do
	Unmanaged Action = "unmanaged" // a shardflow-* connector of no managed shard (reported, never deleted)
)

// KeyChange is one differing key; From is empty for an added key, To for a removed one.
type KeyChange struct {
	Key      string
	From, To string
	Added    bool
	Removed  bool
}

// Change is the plan for one connector.
type Change struct {
	Name    string
	Action  Action
	Keys    []KeyChange
	Desired Config
}

// Plan compares the desired configs with what the cluster stores. The comparison
// ignores "name" (Connect adds it) and is on the unresolved values, so secret
// references compare as text and no secret is ever read.
func Plan(ctx context.Context, c *Client, desired map[string]Config) ([]Change, error) {
	names := make([]string, 0, len(desired))
	for n := range desired {
		names = append(names, n)
	}
	sort.Strings(names)
	var out []Change
	for _, n := range names {
		want := desired[n]
		have, err := c.Config(ctx, n)
		if errors.Is(err, ErrNotFound) {
			out = append(out, Change{Name: n, Action: Create, Keys: diff(nil, want), Desired: want})
			continue
		}
		if err != nil {
			return nil, fmt.Errorf("plan connector %s: %w", n, err)
		}
		ks := diff(have, want)
		a := Unchanged
		if len(ks) > 0 {
			a = Update
		}
		out = append(out, Change{Name: n, Action: a, Keys: ks, Desired: want})
	}
	existing, err := c.Connectors(ctx)
	if err != nil {
		return nil, fmt.Errorf("plan connectors: %w", err)
	}
	sort.Strings(existing)
	for _, n := range existing {
		if _, ok := desired[n]; ok {
			continue
		}
		if _, ours := ShardOfName(n); ours {
			out = append(out, Change{Name: n, Action: Unmanaged})
		}
	}
	return out, nil
}

func diff(have, want Config) []KeyChange {
	keys := map[string]bool{}
	for k := range have {
		keys[k] = true
	}
	for k := range want {
		keys[k] = true
	}
	delete(keys, "name")
	sorted := make([]string, 0, len(keys))
	for k := range keys {
		sorted = append(sorted, k)
	}
	sort.Strings(sorted)
	var out []KeyChange
	for _, k := range sorted {
		h, inH := have[k]
		w, inW := want[k]
		switch {
		case inH && inW && h == w:
		case !inH:
			out = append(out, KeyChange{Key: k, To: w, Added: true})
		case !inW:
			out = append(out, KeyChange{Key: k, From: h, Removed: true})
		default:
			out = append(out, KeyChange{Key: k, From: h, To: w})
		}
	}
	return out
}

// Pending reports whether a plan has anything to apply.
func Pending(plan []Change) bool {
	for _, ch := range plan {
		if ch.Action == Create || ch.Action == Update {
			return true
		}
	}
	return false
}

// Apply puts the config of every connector the plan creates or updates, in name order.
// Running it again after it succeeded puts nothing (the next plan is all unchanged).
func Apply(ctx context.Context, c *Client, plan []Change) error {
	for _, ch := range plan {
		if ch.Action != Create && ch.Action != Update {
			continue
		}
		if err := c.PutConfig(ctx, ch.Name, ch.Desired); err != nil {
			return fmt.Errorf("apply connector %s: %w", ch.Name, err)
		}
	}
	return nil
}

// WritePlan prints a plan as text: one line per connector, then its key changes.
func WritePlan(w io.Writer, plan []Change) {
	for _, ch := range plan {
		switch ch.Action {
		case Unchanged:
			fmt.Fprintf(w, "  %s: unchanged\n", ch.Name)
		case Unmanaged:
			fmt.Fprintf(w, "  %s: on the cluster, not in the registry (left alone; delete it by hand once its shard is retired)\n", ch.Name)
		default:
			fmt.Fprintf(w, "  %s: %s (%d keys)\n", ch.Name, ch.Action, len(ch.Keys))
			if ch.Action == Update {
				for _, k := range ch.Keys {
					switch {
					case k.Added:
						fmt.Fprintf(w, "      + %s = %s\n", k.Key, k.To)
					case k.Removed:
						fmt.Fprintf(w, "      - %s = %s\n", k.Key, k.From)
					default:
						fmt.Fprintf(w, "      ~ %s: %s -> %s\n", k.Key, k.From, k.To)
					}
				}
			}
		}
	}
}

package dashboard_test

import (
	"path/filepath"
	"strings"
	"testing"

	"github.com/shopsphere/shardflow/internal/dashboard"
	"github.com/shopsphere/shardflow/internal/metrics"
	"github.com/shopsphere/shardflow/internal/registry"
	"github.com/shopsphere/shardflow/internal/testenv"
)

func load(t *testing.T) *registry.Registry {
	t.Helper()
	r, err := registry.Load(filepath.Join(testenv.Root(t), "shards.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	return r
}

// Every panel's query names only families the exporter serves or a task pushes; the
// integration test (internal/metrics) checks each of them has series in a real
// Prometheus scraping the exporter and the Pushgateway.
func TestEveryQueryNamesAServedFamily(t *testing.T) {
	d := dashboard.Build(load(t))
	fams := dashboard.Families(d)
	if len(fams) == 0 {
		t.Fatal("the dashboard queries no family")
	}
	for _, f := range fams {
		fam, ok := metrics.Lookup(f)
		if !ok || (fam.Source != metrics.FromExporter && fam.Source != metrics.FromPush) {
			t.Errorf("a panel queries %s, which neither the exporter serves nor a task pushes", f)
		}
	}
	var walk func([]dashboard.Panel)
	walk = func(ps []dashboard.Panel) {
		for _, p := range ps {
			if p.Type != "row" && len(p.Targets) == 0 {
				t.Errorf("panel %q has no query", p.Title)
			}
			for _, tg := range p.Targets {
				if !strings.Contains(tg.Expr, "shardflow_") {
					t.Errorf("panel %q: query %q names no shardflow family", p.Title, tg.Expr)
				}
			}
			walk(p.Panels)
		}
	}
	walk(d.Panels)
}

// One row per shard that is not retired, after the fleet row, each scoped to its shard.
func TestOneRowPerShard(t *testing.T) {
	r := load(t)
	r.Shards[len(r.Shards)-1].State = registry.StateRetired
	d := dashboard.Build(r)
	var rows []string
	shardOf := ""
	for _, p := range d.Panels {
		if p.Type == "row" {
			rows = append(rows, p.Title)
			shardOf = ""
			if id, ok := strings.CutPrefix(p.Title, "shard "); ok {
				shardOf, _, _ = strings.Cut(id, " ")
			}
			continue
		}
		for _, tg := range p.Targets {
			if shardOf != "" && !strings.Contains(tg.Expr, `shard="`+shardOf+`"`) {
				t.Errorf("row of %s, panel %q: query %q is not scoped to the shard", shardOf, p.Title, tg.Expr)
			}
		}
	}
	want := []string{"fleet " + r.Fleet}
	for _, s := range r.Shards {
		if s.State != registry.StateRetired {
			want = append(want, "shard "+s.ID+" ("+string(s.State)+")")
		}
	}
	if strings.Join(rows, "|") != strings.Join(want, "|") {
		t.Errorf("rows %q, want %q", rows, want)
	}
}

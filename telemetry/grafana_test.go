package telemetry

import (
	"encoding/json"
	"os"
	"regexp"
	"strings"
	"testing"
)

// TestGrafanaDashboardNames: every metric the Grafana dashboard (deploy/grafana/zest.json)
// queries is one that /metrics serves, so a renamed metric cannot leave a panel empty.
func TestGrafanaDashboardNames(t *testing.T) {
	b, err := os.ReadFile("../deploy/grafana/zest.json")
	if err != nil {
		t.Fatal(err)
	}
	var d struct {
		Panels []struct {
			Title   string
			Targets []struct{ Expr string }
		}
	}
	if err := json.Unmarshal(b, &d); err != nil {
		t.Fatalf("zest.json: %v", err)
	}
	r := NewRegistry(nil)
	m := NewMetrics(r, nil)
	m.Request("/v1/chat/completions", 200, CacheHit, LayerExact)
	m.Saved("m", 1, 1)
	m.RateLimited(RateLimitRequests)
	served := map[string]bool{}
	fams, err := r.Gatherer().Gather()
	if err != nil {
		t.Fatal(err)
	}
	for _, f := range fams {
		served[f.GetName()] = true
	}
	name := regexp.MustCompile(`\b(?:zest|go|process)_[a-z_]+`)
	n := 0
	for _, p := range d.Panels {
		for _, tg := range p.Targets {
			for _, metric := range name.FindAllString(tg.Expr, -1) {
				n++
				base := strings.TrimSuffix(metric, "_bucket")
				if !served[metric] && !served[base] {
					t.Errorf("panel %q queries %s, which /metrics does not serve", p.Title, metric)
				}
			}
		}
	}
	if n < 20 {
		t.Errorf("only %d metric references found", n)
	}
}

package main

import (
	"strings"
	"testing"

	"github.com/zest-proxy/zest/bench/load"
	"github.com/zest-proxy/zest/bench/report"
)

func TestRedisSkipOf(t *testing.T) {
	byName := map[string]scenario{}
	for _, s := range scenarios() {
		byName[s.name] = s
	}
	tests := []struct {
		name     string
		scenario string
		smoke    bool
		names    map[string]bool
		noRedis  bool
		want     string // substring of the reason; "" = runs
	}{
		{"full run", "zest-redis-local-hit", false, nil, false, ""},
		{"smoke runs its subset", "zest-redis-tier-hit", true, nil, false, ""},
		{"smoke leaves the rest", "zest-redis-local-hit", true, nil, false, "not run with -smoke"},
		{"smoke leaves the local limiter twin", "zest-limit-local", true, nil, false, "not run with -smoke"},
		{"named scenarios run in smoke", "zest-redis-local-hit", true, map[string]bool{"zest-redis-local-hit": true}, false, ""},
		{"no redis", "zest-redis-replicas", false, nil, true, "no redis"},
		{"no redis needed", "zest-limit-local", false, nil, true, ""},
		{"other scenarios", "zest-hit", true, nil, true, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			e := &env{o: &options{smoke: tt.smoke, names: tt.names}}
			if tt.noRedis {
				e.rd.skip = "no redis (test)"
			}
			s := byName[tt.scenario]
			got := e.redisSkipOf(&s)
			if (tt.want == "") != (got == "") || !strings.Contains(got, tt.want) {
				t.Fatalf("redisSkipOf(%s) = %q, want %q", tt.scenario, got, tt.want)
			}
		})
	}
}

func TestRoundRobin(t *testing.T) {
	next := roundRobin([]string{"a:1", "b:2"}, false)
	var got []string
	for range 4 {
		got = append(got, next().(*load.Conn).Addr)
	}
	if strings.Join(got, ",") != "a:1,b:2,a:1,b:2" {
		t.Fatalf("connections went to %v", got)
	}
}

func TestRedisSummary(t *testing.T) {
	sc := func(name string, rps float64) report.Scenario {
		return report.Scenario{Name: name, MaxRPS: rps, HitRate: 0.5, Open: &report.Phase{P50: 1000, P99: 2000}}
	}
	rep := &report.Run{Scenarios: []report.Scenario{sc("zest-redis-one", 1000), sc("zest-redis-replicas", 1500),
		sc("zest-limit-local", 900), {Name: "zest-limit-redis", Skipped: "no redis"}}}
	redisSummary(rep)
	if len(rep.Notes) != 1 || !strings.Contains(rep.Notes[0], "1500 req/s together against 1000 for one (1.50×)") {
		t.Fatalf("notes = %q", rep.Notes)
	}
}

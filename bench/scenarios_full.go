package main

import (
	"bufio"
	"context"
	"fmt"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/zest-proxy/zest/bench/load"
)

// fullCacheConfig is zest-miss-full's config: the defaults with a 64 MiB exact cache, which
// unique prompts fill in seconds.
const fullCacheConfig = "[cache]\nmax_bytes = \"64MiB\"\n"

// fillShare is how full fillCaches makes the exact cache, as a share of its budget.
const fillShare = 0.9

// fillCaches is zest-miss-full's prepare step: unique prompts (numbered past every phase's) until
// the exact cache holds fillShare of its budget, read from zest's /metrics. Every other scenario
// meets a fresh zest; this one meets a long-running sidecar's steady state, where the collector
// marks a full cache's entries on every cycle.
func fillCaches(ctx context.Context, e *env, s *scenario, zs *zestSet) error {
	addr := zs.addrs[0]
	newDoer := func() load.Doer { return &load.Conn{Addr: addr} }
	const step, maxSteps = 10000, 100
	for i := uint64(0); ; i++ {
		held, budget, err := exactCacheBytes(ctx, addr)
		if err != nil {
			return fmt.Errorf("fill: %w", err)
		}
		if budget > 0 && held >= fillShare*budget {
			return nil
		}
		if i == maxSteps {
			return fmt.Errorf("fill: the exact cache holds %.0f of %.0f bytes after %d requests", held, budget, i*step)
		}
		res, err := load.Run(ctx, load.Config{Gen: s.gen(addr, 10*phaseStride+i*step), NewDoer: newDoer, Conns: 16,
			Duration: time.Minute, MaxRequests: step})
		if err != nil {
			return fmt.Errorf("fill: %w", err)
		}
		if res.Status[200] != res.Requests {
			return fmt.Errorf("fill: %d of %d answered 200 (%v)", res.Status[200], res.Requests, res.Status)
		}
	}
}

// exactCacheBytes reads zest_cache_bytes and zest_cache_max_bytes from zest's /metrics.
func exactCacheBytes(ctx context.Context, addr string) (held, budget float64, err error) {
	req, _ := http.NewRequestWithContext(ctx, http.MethodGet, "http://"+addr+"/metrics", nil)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return 0, 0, err
	}
	defer resp.Body.Close()
	sc := bufio.NewScanner(resp.Body)
	for sc.Scan() {
		name, v, ok := strings.Cut(sc.Text(), " ")
		if !ok || (name != "zest_cache_bytes" && name != "zest_cache_max_bytes") {
			continue
		}
		f, err := strconv.ParseFloat(v, 64)
		if err != nil {
			return 0, 0, fmt.Errorf("metrics: %s %q: %w", name, v, err)
		}
		if name == "zest_cache_bytes" {
			held = f
		} else {
			budget = f
		}
	}
	if err := sc.Err(); err != nil {
		return 0, 0, err
	}
	if budget == 0 {
		return 0, 0, fmt.Errorf("metrics: no zest_cache_max_bytes")
	}
	return held, budget, nil
}

package main

import (
	"math/rand/v2"
	"strconv"
	"strings"

	"github.com/zest-proxy/zest/bench/load"
)

// target names the server a scenario talks to.
type target int

const (
	tMock target = iota
	tRevProxy
	tNginxPass
	tNginxCache
	tZest
	tGoMem
)

// scenario is one row of the report.
type scenario struct {
	name, title string
	target      target
	baseline    string // scenario the ratios compare against; "" for none
	zestConfig  string // config.toml for this scenario's zest; "" = built-in defaults
	stream      bool
	sweep       bool    // closed loop at several concurrencies, else only at -conns
	noClosed    bool    // no closed-loop phase at all
	rate        float64 // open-loop rate override; 0 = -rate
	headers     []string
	prompt      func(i uint64) string // the user message of request i
	extra       string                // extra top-level JSON fields, with a leading comma
	warm        []uint64              // request numbers to send once before measuring
	limitRPM    float64               // rate-limit scenario: configured requests per minute
	replay      bool                  // load-test scenario: record, then replay at 100× concurrency (see runReplay)

	// Scenarios with a Redis (scenarios_redis.go).
	redis     bool        // zest gets a [redis] section (skipped without a Redis)
	replicas  int         // zest processes sharing that Redis; 0 = 1
	loadOn    int         // how many of the replicas take the load (the first ones); 0 = all
	maxClosed uint64      // caps each closed-loop point's requests; 0 = no cap
	prepare   prepareFunc // runs before the warm-up; nil = nothing
	cold      bool        // no connection warm-up phase: the first requests are part of the point
	slow      bool        // not run with -smoke unless named in -scenarios (its preparation takes long)
}

const (
	fixedPrompt = "Explain in two sentences what a caching reverse proxy does for an OpenAI-compatible chat API."
	semBase     = "explain in two short sentences what a caching reverse proxy does for a chat api and why teams use one"
	zipfPrompts = 1000
	authHeader  = "Authorization: Bearer sk-bench-0001"
)

func fixed(uint64) string { return fixedPrompt }

// replayPrompt is prompt i of the load-test workload (runReplay takes i modulo its size).
func replayPrompt(i uint64) string {
	return "Load-test prompt " + strconv.FormatUint(i, 10) + ": what does a reverse proxy cache, and for how long?"
}

// unique makes every request a different prompt (a guaranteed cache miss). Its number gives
// each prompt a semantic partition of its own (the verifier's signature), so a lookup has
// nothing to compare it with: the cheapest semantic miss.
func unique(i uint64) string { return fixedPrompt + " Request " + strconv.FormatUint(i, 10) + "." }

// uniqueWords makes every request a different prompt without a number of its own, as most
// prompts are: they all fall in one semantic partition, which grows with every answer stored
// (a lookup reads the entries filed under its name's keys; see the README's semantic index). The name that tells them apart is seven letters scattered by a
// multiplicative hash, so that two names one typo apart (which the verifier may take for the
// same word) are rare.
func uniqueWords(i uint64) string {
	b := []byte(fixedPrompt + " Project ")
	h := (i + 1) * 0x9E3779B97F4A7C15
	for range 7 {
		b = append(b, byte('a'+h%26))
		h /= 26
	}
	return string(append(b, '.'))
}

// semVariant returns variant i+1 of semBase that differs only in letter case
// and doubled spaces: a new exact key every time, the same meaning, no new
// words or numbers. Variant 0 is semBase itself.
func semVariant(i uint64) string {
	words := strings.Fields(semBase)
	v := i + 1
	var b strings.Builder
	for j, w := range words {
		if v>>uint(j%20)&1 == 1 && j < 20 {
			w = strings.ToUpper(w[:1]) + w[1:]
		}
		b.WriteString(w)
		if j < len(words)-1 {
			b.WriteByte(' ')
			if v>>(20+uint(j))&1 == 1 {
				b.WriteByte(' ')
			}
		}
	}
	return b.String()
}

// zipfRanks is a fixed pseudo-random sequence of prompt ranks with a Zipf
// (s = 1.1) popularity: a few prompts are asked very often, most rarely.
func zipfRanks(n int) []uint64 {
	r := rand.New(rand.NewPCG(42, 7))
	z := rand.NewZipf(r, 1.1, 1, zipfPrompts-1)
	out := make([]uint64, n)
	for i := range out {
		out[i] = z.Uint64()
	}
	return out
}

func scenarios() []scenario {
	ranks := zipfRanks(1 << 16)
	zipf := func(i uint64) string {
		return "Question number " + strconv.FormatUint(ranks[i%uint64(len(ranks))], 10) + ": what does a reverse proxy cache?"
	}
	return append([]scenario{
		{name: "direct", title: "driver → mock (baseline)", target: tMock, baseline: "direct", sweep: true, prompt: unique},
		{name: "revproxy", title: "driver → tuned httputil.ReverseProxy → mock", target: tRevProxy, baseline: "direct", sweep: true, prompt: unique},
		{name: "nginx-pass", title: "driver → nginx proxy_pass (keepalive) → mock", target: tNginxPass, baseline: "direct", sweep: true, prompt: unique},
		{name: "nginx-hit", title: "driver → nginx proxy_cache HIT (POST keyed on body)", target: tNginxCache, baseline: "direct", sweep: true, prompt: fixed, warm: []uint64{0}},
		{name: "gomem-hit", title: "driver → a minimal Go net/http cache HIT (bench/gomem: body hash → answer in a map)", target: tGoMem, baseline: "direct", sweep: true, prompt: fixed, warm: []uint64{0}},
		{name: "zest-miss", title: "zest defaults, every prompt new (exact + semantic miss, store both)", target: tZest, baseline: "direct", sweep: true, prompt: unique},
		{name: "zest-miss-words", title: "zest defaults, every prompt new and without a number, differing in a made-up name (one semantic partition)",
			target: tZest, baseline: "direct", prompt: uniqueWords},
		{name: "zest-miss-exact", title: "zest, exact cache only ([semantic] off), every prompt new", target: tZest, baseline: "direct", sweep: true, prompt: unique,
			zestConfig: "[semantic]\nenabled = false\n"},
		{name: "zest-miss-full", title: "zest defaults with a full exact cache (64 MiB, filled first: a long-running sidecar's steady state), every prompt new",
			target: tZest, baseline: "direct", prompt: unique, zestConfig: fullCacheConfig, prepare: fillCaches, slow: true},
		{name: "zest-bypass", title: `zest with cache_control {"type":"no_cache"} (BYPASS)`, target: tZest, baseline: "direct", prompt: fixed, extra: `,"cache_control":{"type":"no_cache"}`},
		{name: "zest-hit", title: "zest exact-cache hit (one warmed prompt)", target: tZest, baseline: "direct", sweep: true, prompt: fixed, warm: []uint64{0}},
		{name: "zest-hit-quiet", title: `zest exact-cache hit without the access line ([log] level = "warn"; nginx runs with access_log off)`,
			target: tZest, baseline: "nginx-hit", prompt: fixed, warm: []uint64{0}, zestConfig: "[log]\nlevel = \"warn\"\n"},
		{name: "zest-semantic", title: "zest semantic hit (case/spacing variants of a warmed prompt)", target: tZest, baseline: "direct",
			zestConfig: "[semantic]\nenabled = true\n", prompt: semVariant, warm: []uint64{1 << 62}},
		{name: "direct-stream", title: "driver → mock, streamed (baseline for time to first token)", target: tMock, baseline: "direct-stream", stream: true, prompt: unique},
		{name: "revproxy-stream", title: "driver → tuned httputil.ReverseProxy → mock, streamed (what a bare proxy adds to time to first token)",
			target: tRevProxy, baseline: "direct-stream", stream: true, prompt: unique},
		{name: "zest-stream-miss", title: "zest streamed miss (added time to first token)", target: tZest, baseline: "direct-stream", stream: true, prompt: unique},
		{name: "zest-stream-hit", title: "zest streamed hit (replayed SSE)", target: tZest, baseline: "direct-stream", stream: true, prompt: fixed, warm: []uint64{0}},
		{name: "zest-zipf", title: "zest, Zipf mix of 1000 prompts, upstream takes 2 ms", target: tZest, prompt: zipf, headers: []string{"X-Mock-Latency: 2ms"}},
		{name: "zest-ratelimit", title: "zest rate limiter under overload (one identity, 600/min)", target: tZest, noClosed: true, prompt: fixed,
			rate: 1000, limitRPM: 600},
		{name: "zest-replay", title: "zest load-test mode: streams recorded over 2 connections, replayed over 200 (100×) at the recorded pace",
			target: tZest, stream: true, replay: true, prompt: replayPrompt, zestConfig: "[semantic]\nenabled = false\n"},
	}, redisScenarios(zipf)...)
}

// gen returns the request generator of s against host, numbering requests
// from offset so that phases never repeat a unique prompt.
func (s *scenario) gen(host string, offset uint64) load.Gen {
	headers := append([]string{authHeader}, s.headers...)
	return func(i uint64, dst []byte) []byte {
		return load.BuildRequest(dst, "POST", host, "/v1/chat/completions", headers, s.body(i+offset))
	}
}

// body returns the JSON of request i: a 300-odd byte chat request.
func (s *scenario) body(i uint64) []byte {
	p := s.prompt
	if s.warmIndex(i) {
		i &^= 1 << 62
		if s.name == "zest-semantic" {
			p = func(uint64) string { return semBase }
		}
	}
	b := make([]byte, 0, 400)
	b = append(b, `{"model":"gpt-4o-mini","messages":[{"role":"system","content":"You are a helpful assistant. Answer briefly."},{"role":"user","content":`...)
	b = strconv.AppendQuote(b, p(i))
	b = append(b, `}],"temperature":0,"max_tokens":64`...)
	if s.stream {
		b = append(b, `,"stream":true,"stream_options":{"include_usage":true}`...)
	}
	b = append(b, s.extra...)
	return append(b, '}')
}

// warmIndex reports whether i is the semantic scenario's warm-up marker.
func (s *scenario) warmIndex(i uint64) bool { return i&(1<<62) != 0 }

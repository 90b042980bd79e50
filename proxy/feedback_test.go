package proxy

import (
	"encoding/json"
	"net/http"
	"testing"
)

// TestFeedback: a client reports a wrong cached answer by its X-Cache-Key. Only its own tenant
// may; anyone else gets the 404 of a key that never existed. The entry leaves both caches, the
// reported pair of prompts never matches again (either way round), and the report is counted.
func TestFeedback(t *testing.T) {
	up := newUpstream(t, jsonAnswer(200, completionJSON))
	x := xNewEnv(t, up, xCfg{semantic: true, metrics: true})
	key := x.prime(t, xChat(xPromptA, "")).header.Get("X-Cache-Key")
	hit := x.chat(xChat(xPromptA2, ""))
	wantStatus(t, hit, 200, "HIT")
	if hit.header.Get("X-Cache-Type") != "semantic" || hit.header.Get("X-Cache-Key") != key {
		t.Fatalf("want a semantic hit on %s, got %v", key, hit.header)
	}
	post := func(body string, opts ...reqOpt) *result {
		return x.do(http.MethodPost, feedbackPath, body, opts...)
	}
	var notFound string
	for _, tc := range []struct {
		name   string
		method string
		body   string
		opts   []reqOpt
		status int
		param  string
	}{
		{"GET is not allowed", http.MethodGet, "", nil, http.StatusMethodNotAllowed, ""},
		{"no key", http.MethodPost, `{"reason":"wrong"}`, nil, http.StatusBadRequest, "cache_key"},
		{"not JSON", http.MethodPost, `cache_key=x`, nil, http.StatusBadRequest, ""},
		{"key of the wrong type", http.MethodPost, `{"cache_key":42}`, nil, http.StatusBadRequest, "cache_key"},
		{"body and header differ", http.MethodPost, `{"cache_key":"` + key + `"}`, []reqOpt{withHeader("X-Cache-Key", "other")}, http.StatusBadRequest, "cache_key"},
		{"another tenant", http.MethodPost, `{"cache_key":"` + key + `"}`, []reqOpt{withToken("sk-client-two")}, http.StatusNotFound, "cache_key"},
		{"unknown key", http.MethodPost, `{"cache_key":"0123abcd"}`, nil, http.StatusNotFound, "cache_key"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r := x.do(tc.method, feedbackPath, tc.body, tc.opts...)
			e := wantError(t, r, tc.status, "invalid_request_error", tc.param)
			if tc.status == http.StatusNotFound {
				if notFound != "" && e.Message != notFound {
					t.Errorf("404 messages differ (%q vs %q): they would reveal that the entry exists", e.Message, notFound)
				}
				notFound = e.Message
			}
		})
	}

	r := post(`{"cache_key":"` + key + `","reason":"answered about France for a question about Spain"}`)
	if r.status != http.StatusOK {
		t.Fatalf("own report: status %d: %s", r.status, r.body)
	}
	var res FeedbackResult
	if err := json.Unmarshal(r.body, &res); err != nil || !res.Exact || !res.Semantic || res.CacheKey != key {
		t.Fatalf("report result = %+v (%v): %s", res, err, r.body)
	}
	wantError(t, post(`{"cache_key":"`+key+`"}`), http.StatusNotFound, "invalid_request_error", "cache_key")

	// The pair never matches again: the paraphrase misses and is stored, and then the original
	// prompt (its exact entry gone) does not match the paraphrase's entry either.
	x.prime(t, xChat(xPromptA2, ""))
	x.prime(t, xChat(xPromptA, "")) // a MISS, stored before the next step

	// The key may come in a header alone.
	key2 := x.prime(t, xChat(xPromptFar, "")).header.Get("X-Cache-Key")
	if r := post("", withHeader("X-Cache-Key", key2)); r.status != http.StatusOK {
		t.Fatalf("report by header: status %d: %s", r.status, r.body)
	}

	st := x.h.Stats()
	if st.Feedback.Removed != 2 || st.Feedback.NotFound != 3 {
		t.Errorf("stats feedback = %+v, want 2 removed, 3 not found", st.Feedback)
	}
	if sem := x.sem.Stats(); sem.Reports != 2 || sem.RefusedPairs != 1 || sem.Refused == 0 {
		t.Errorf("semantic stats: %d reports, %d refused pairs, %d refusals; want 2, 1, some", sem.Reports, sem.RefusedPairs, sem.Refused)
	}
	m := x.scrape(t)
	if got := m[xSeries("zest_cache_feedback_total", "result", "removed")]; got != 2 {
		t.Errorf("zest_cache_feedback_total{result=removed} = %v, want 2", got)
	}
	if got := m[xSeries("zest_cache_feedback_total", "result", "not_found")]; got != 3 {
		t.Errorf("zest_cache_feedback_total{result=not_found} = %v, want 3", got)
	}
}

package proxy

import (
	"net/http"
	"strings"
	"testing"
)

// TestObsExemplars: with tracing on, an OpenMetrics scrape shows the request's trace id as an
// exemplar on the request-duration, upstream-duration and TTFT histograms; the plain text
// format carries none.
func TestObsExemplars(t *testing.T) {
	up := newUpstream(t, jsonAnswer(200, completionJSON))
	x := xNewEnv(t, up, xCfg{metrics: true, tracing: true})
	tp, tid, _ := xTraceparent(21)
	wantStatus(t, x.chat(xChat(xPromptA, ""), withHeader("Traceparent", tp)), 200, "MISS")
	x.spansOf(t, tid, 2) // the server span and the upstream call's have ended
	const openMetrics = "application/openmetrics-text; version=1.0.0"
	metrics := []string{"zest_request_duration_seconds_bucket{cache=\"miss\"", "zest_upstream_duration_seconds_bucket", "zest_upstream_ttft_seconds_bucket"}
	missing := func(body string) []string {
		var out []string
		for _, metric := range metrics {
			found := false
			for _, line := range strings.Split(body, "\n") {
				if strings.HasPrefix(line, metric) && strings.Contains(line, `# {trace_id="`+tid.String()+`"}`) {
					found = true
				}
			}
			if !found {
				out = append(out, metric)
			}
		}
		return out
	}
	// The request's own duration is observed as its handler returns, which may be after the
	// client has read the answer: wait for every series rather than for one of them.
	var last []string
	t.Cleanup(func() {
		if t.Failed() && len(last) > 0 {
			t.Logf("series without an exemplar of trace %s: %v", tid, last)
		}
	})
	xEventually(t, "exemplars with the request's trace", func() bool {
		r := x.do(http.MethodGet, "/metrics", "", withHeader("Accept", openMetrics))
		last = missing(string(r.body))
		return len(last) == 0
	})
	if r := x.do(http.MethodGet, "/metrics", ""); strings.Contains(string(r.body), "trace_id") {
		t.Error("the text format carries exemplars")
	}
}

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
	var body string
	xEventually(t, "the upstream duration's exemplar", func() bool {
		r := x.do(http.MethodGet, "/metrics", "", withHeader("Accept", openMetrics))
		body = string(r.body)
		return strings.Contains(body, "zest_upstream_duration_seconds_bucket") &&
			strings.Contains(body, `zest_upstream_duration_seconds_count 1`)
	})
	for _, metric := range []string{"zest_request_duration_seconds_bucket{cache=\"miss\"", "zest_upstream_duration_seconds_bucket", "zest_upstream_ttft_seconds_bucket"} {
		found := false
		for _, line := range strings.Split(body, "\n") {
			if strings.HasPrefix(line, metric) && strings.Contains(line, `# {trace_id="`+tid.String()+`"}`) {
				found = true
			}
		}
		if !found {
			t.Errorf("no exemplar with trace %s on %s", tid, metric)
		}
	}
	if r := x.do(http.MethodGet, "/metrics", ""); strings.Contains(string(r.body), "trace_id") {
		t.Error("the text format carries exemplars")
	}
}

package telemetry

import "strings"

// isAPIResource reports whether seg is a first path segment after /v1/ that
// RouteLabel keeps.
func isAPIResource(seg string) bool {
	switch seg {
	case "chat", "completions", "embeddings", "models", "responses", "moderations",
		"images", "audio", "files", "uploads", "batches", "fine_tuning", "assistants",
		"threads", "vector_stores", "realtime", "conversations", "containers", "evals":
		return true
	}
	return false
}

// RouteLabel maps a request path to a label with bounded cardinality:
// "/v1/chat/completions" stays as it is; any other "/v1/X/..." becomes
// "/v1/X" when X is an OpenAI API resource (models, embeddings, files...)
// and "/v1/other" otherwise; "/healthz" and "/metrics" stay; "/admin/..."
// becomes "/admin"; everything else is "other". Ids in paths never become
// label values.
func RouteLabel(path string) string {
	switch path {
	case "/v1/chat/completions", "/healthz", "/metrics", "/admin":
		return path
	}
	if rest, ok := strings.CutPrefix(path, "/v1/"); ok {
		seg, _, _ := strings.Cut(rest, "/")
		if isAPIResource(seg) {
			return path[:len("/v1/")+len(seg)]
		}
		return "/v1/other"
	}
	if strings.HasPrefix(path, "/admin/") {
		return "/admin"
	}
	return "other"
}

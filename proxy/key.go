package proxy

import (
	"net/http"
	"net/url"
	"strings"

	"github.com/zest-proxy/zest/cache"
)

// answerHeaders are request headers that change what an upstream answers (API versions and
// betas); they are part of a request's cache identity.
var answerHeaders = []string{"Openai-Beta", "Anthropic-Version", "Anthropic-Beta"}

// cacheKey is the one place a chat request's cache identity is built: the namespace, the
// method, the upstream URL it goes to (base, path and merged query, as forwarded), the
// headers that change the answer, and the canonical body.
func (h *Handler) cacheKey(r *http.Request, ns string, req *cache.Request) string {
	return cache.Key(ns, h.cacheTarget(r), req.Canonical)
}

// cacheTarget is the part of cacheKey besides namespace and body. The common case (no query,
// none of answerHeaders) costs no allocation.
func (h *Handler) cacheTarget(r *http.Request) string {
	extra := false
	for _, k := range answerHeaders {
		if len(r.Header[k]) > 0 {
			extra = true
			break
		}
	}
	if r.URL.RawQuery == "" && !extra {
		return h.chatTarget
	}
	var b strings.Builder
	b.WriteString(r.Method)
	b.WriteByte(' ')
	b.WriteString(requestTarget(h.upstream, r))
	for _, k := range answerHeaders {
		for _, v := range r.Header[k] {
			b.WriteByte(0)
			b.WriteString(k)
			b.WriteByte(':')
			b.WriteString(v)
		}
	}
	return b.String()
}

// requestTarget is the upstream URL a client request is forwarded to, as a string.
func requestTarget(base *url.URL, r *http.Request) string {
	u := upstreamURL(base, r.URL)
	return u.String()
}

// upstreamURL maps a client URL under /v1 to the upstream: the base URL's scheme, host and
// path, the client's path after /v1 kept as escaped as it came (%2F stays %2F), and the base
// URL's own query followed by the client's.
func upstreamURL(base *url.URL, in *url.URL) *url.URL {
	u := *base
	u.User = nil
	rest := strings.TrimPrefix(in.EscapedPath(), "/v1")
	basePath := strings.TrimSuffix(base.EscapedPath(), "/")
	if p, err := url.PathUnescape(basePath + rest); err == nil {
		u.Path = p
		u.RawPath = basePath + rest
		if u.EscapedPath() != u.RawPath {
			u.RawPath = "" // EscapedPath would not keep it: the plain path says the same
		}
	} else {
		u.Path, u.RawPath = upstreamPath(base, in.Path), ""
	}
	u.RawQuery = mergeQuery(base.RawQuery, in.RawQuery)
	u.Fragment, u.RawFragment = "", ""
	return &u
}

// mergeQuery joins the upstream base URL's query and the client's.
func mergeQuery(base, client string) string {
	switch {
	case base == "":
		return client
	case client == "":
		return base
	}
	return base + "&" + client
}

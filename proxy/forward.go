package proxy

import (
	"context"
	"log/slog"
	"net"
	"net/http"
	"net/http/httputil"
	"net/url"
	"strings"
	"time"

	"github.com/zest-proxy/zest/proxy/h1"
)

// NewTransport returns the shared upstream transport: keep-alive, many idle connections per
// host (a sidecar talks to one or two upstreams), HTTP/2 when the upstream offers it.
func NewTransport() *http.Transport {
	return &http.Transport{
		Proxy: http.ProxyFromEnvironment,
		DialContext: (&net.Dialer{
			Timeout:   10 * time.Second,
			KeepAlive: 30 * time.Second,
		}).DialContext,
		ForceAttemptHTTP2:     true,
		MaxIdleConns:          2048,
		MaxIdleConnsPerHost:   1024,
		IdleConnTimeout:       90 * time.Second,
		TLSHandshakeTimeout:   10 * time.Second,
		ExpectContinueTimeout: time.Second,
	}
}

// upstreamTransport returns the transport for calls to base: for a plain-http upstream that no
// environment proxy applies to, an h1.Transport (each call on its caller's goroutine; see package
// h1) in front of NewTransport, which carries everything else.
func upstreamTransport(base *url.URL) http.RoundTripper {
	std := NewTransport()
	if !h1.Supported || base.Scheme != "http" {
		return std
	}
	if p, err := std.Proxy(&http.Request{URL: base}); err != nil || p != nil {
		return std
	}
	t, err := h1.New(h1.Options{Host: base.Host, Fallback: std})
	if err != nil {
		return std
	}
	return t
}

// upstreamPath maps a client path under /v1 to the upstream base URL's path:
// /v1/chat/completions → <base path>/chat/completions.
func upstreamPath(base *url.URL, clientPath string) string {
	rest := strings.TrimPrefix(clientPath, "/v1")
	return strings.TrimSuffix(base.Path, "/") + rest
}

// newReverseProxy forwards requests unchanged to the upstream. Streaming bodies are flushed
// as they arrive (ReverseProxy flushes text/event-stream and unknown-length bodies at once).
func (h *Handler) newReverseProxy() *httputil.ReverseProxy {
	base := h.upstream
	return &httputil.ReverseProxy{
		Rewrite: func(pr *httputil.ProxyRequest) {
			pr.SetURL(base)
			pr.Out.URL = upstreamURL(base, pr.In.URL)
			pr.SetXForwarded()
			h.setUpstreamAuth(pr.Out.Header)
			h.injectTrace(pr.Out)
		},
		Transport:     h.transport,
		FlushInterval: -1,
		ErrorLog:      nil,
		ErrorHandler: func(w http.ResponseWriter, r *http.Request, err error) {
			e := upstreamError(r.Context(), err)
			h.logger.LogAttrs(r.Context(), levelFor(e.Status), "upstream error",
				slog.String("path", r.URL.Path), slog.Int("status", e.Status), slog.String("error", errText(err)))
			if e.Status == statusClientClosed {
				return
			}
			if lb, ok := r.Body.(*limitedBody); ok && e.Status == http.StatusRequestEntityTooLarge {
				drainBody(w, r, lb.raw)
			}
			writeError(w, e)
		},
	}
}

// operatorHeaders are the client headers that pick credentials or billing upstream; with the
// operator's own key configured they are the operator's to set, never a client's.
var operatorHeaders = []string{"Api-Key", "X-Api-Key", "Openai-Organization", "Openai-Project"}

// setUpstreamAuth puts the operator's key on an upstream request when one is configured, and
// then drops the client's own credentials and billing headers: the client's token only
// identified the tenant.
func (h *Handler) setUpstreamAuth(hd http.Header) {
	if h.opts.UpstreamAPIKey == "" {
		return
	}
	hd.Set("Authorization", "Bearer "+h.opts.UpstreamAPIKey)
	for _, k := range operatorHeaders {
		hd.Del(k)
	}
}

// withTimeout bounds a forwarded request by the upstream timeout.
func (h *Handler) withTimeout(r *http.Request) (*http.Request, context.CancelFunc) {
	if h.opts.Timeout <= 0 {
		return r, func() {}
	}
	ctx, cancel := context.WithTimeout(r.Context(), h.opts.Timeout)
	return r.WithContext(ctx), cancel
}

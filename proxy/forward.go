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
			pr.Out.URL.Path = upstreamPath(base, pr.In.URL.Path)
			pr.Out.URL.RawPath = ""
			pr.Out.URL.RawQuery = pr.In.URL.RawQuery
			pr.SetXForwarded()
			if h.opts.UpstreamAPIKey != "" {
				pr.Out.Header.Set("Authorization", "Bearer "+h.opts.UpstreamAPIKey)
			}
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
			writeError(w, e)
		},
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

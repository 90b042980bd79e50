package proxy

import (
	"crypto/sha256"
	"crypto/subtle"
	"encoding/json"
	"net/http"
	"strings"

	"github.com/zest-proxy/zest/proxy/dashboard"
)

// serveAdmin answers /admin/... for a caller holding the admin token:
//
//	GET    /admin/                           the dashboard page (no token needed: it asks for it)
//	GET    /admin/stats                      counters of every layer, as JSON
//	DELETE /admin/cache                      every cached answer (exact and semantic)
//	DELETE /admin/cache?namespace=NS         one namespace ("k:<sha256 of key>", "u:<user>", "shared")
//	DELETE /admin/cache  + X-Cache-Key: ID   one entry, by the id zest reported in X-Cache-Key
//
// Without Options.AdminToken the admin API does not exist (404); with a wrong or missing token
// it answers 401.
func (h *Handler) serveAdmin(w http.ResponseWriter, r *http.Request) {
	if h.opts.AdminToken == "" {
		writeError(w, &apiError{Status: http.StatusNotFound, Type: "invalid_request_error", Code: "unknown_url",
			Message: "The admin API is off: set ZEST_ADMIN_TOKEN to turn it on."})
		return
	}
	if dashboard.Serves(r.URL.Path) {
		// The page and its files hold no data; the page asks for the token and sends it with
		// every GET /admin/stats.
		dashboard.Handler().ServeHTTP(w, r)
		return
	}
	if !h.adminAuthorized(r) {
		h.logger.Warn("admin request refused: bad or missing token", "method", r.Method, "path", r.URL.Path, "client", ClientIP(r))
		w.Header().Set("WWW-Authenticate", `Bearer realm="zest admin"`)
		writeError(w, &apiError{Status: http.StatusUnauthorized, Type: "invalid_request_error", Code: "invalid_admin_token",
			Message: "The admin API needs Authorization: Bearer <ZEST_ADMIN_TOKEN>."})
		return
	}
	switch {
	case r.URL.Path == "/admin/stats" && r.Method == http.MethodGet:
		writeJSON(w, http.StatusOK, h.Stats())
	case r.URL.Path == "/admin/cache" && r.Method == http.MethodDelete:
		if e := purgeRequestError(r); e != nil {
			writeError(w, e)
			return
		}
		writeJSON(w, http.StatusOK, h.purge(r))
	case r.URL.Path == "/admin/stats" || r.URL.Path == "/admin/cache":
		w.Header().Set("Allow", map[string]string{"/admin/stats": "GET", "/admin/cache": "DELETE"}[r.URL.Path])
		writeError(w, &apiError{Status: http.StatusMethodNotAllowed, Type: "invalid_request_error",
			Message: r.Method + " is not allowed on " + r.URL.Path + "."})
	default:
		writeError(w, &apiError{Status: http.StatusNotFound, Type: "invalid_request_error", Code: "unknown_url",
			Message: "Unknown admin URL: " + r.URL.Path})
	}
}

// adminAuthorized compares the bearer token with the admin token in constant time (over
// fixed-length digests, so the length does not leak either).
func (h *Handler) adminAuthorized(r *http.Request) bool {
	auth := r.Header.Get("Authorization")
	if len(auth) < 7 || !strings.EqualFold(auth[:7], "bearer ") {
		return false
	}
	got := sha256.Sum256([]byte(strings.TrimSpace(auth[7:])))
	want := sha256.Sum256([]byte(h.opts.AdminToken))
	return subtle.ConstantTimeCompare(got[:], want[:]) == 1
}

// PurgeResult says what a DELETE /admin/cache removed.
type PurgeResult struct {
	Scope    string `json:"scope"` // all | namespace | key
	Exact    int    `json:"exact_removed"`
	Semantic int    `json:"semantic_removed"`
}

// purgeRequestError refuses a purge whose scope is unclear, so that a typo never empties the
// whole cache: the only query parameter is a non-empty namespace, and an X-Cache-Key header, when
// present, is not empty.
func purgeRequestError(r *http.Request) *apiError {
	q := r.URL.Query()
	for k, v := range q {
		if k != "namespace" {
			return badRequest(k, "Unknown parameter "+k+": DELETE /admin/cache takes ?namespace=NS or an X-Cache-Key header; with neither it purges everything.")
		}
		if len(v) != 1 || v[0] == "" {
			return badRequest("namespace", "namespace must name one namespace (k:<sha256 of key>, u:<user> or shared).")
		}
	}
	if vs, ok := r.Header["X-Cache-Key"]; ok && (len(vs) != 1 || vs[0] == "") {
		return badRequest("X-Cache-Key", "X-Cache-Key must carry one entry id.")
	}
	if q.Has("namespace") && r.Header.Get("X-Cache-Key") != "" {
		return badRequest("namespace", "Give either ?namespace= or X-Cache-Key, not both.")
	}
	return nil
}

func (h *Handler) purge(r *http.Request) PurgeResult {
	var res PurgeResult
	c, s := h.opts.Cache, h.opts.Semantic
	switch key, ns := r.Header.Get("X-Cache-Key"), r.URL.Query().Get("namespace"); {
	case key != "":
		res.Scope = "key"
		if c != nil && c.Delete(key) {
			res.Exact = 1
		}
		if s != nil && s.Delete(key) {
			res.Semantic = 1
		}
	case ns != "":
		res.Scope = "namespace"
		if c != nil {
			res.Exact = c.DeleteNamespace(ns)
		}
		if s != nil {
			res.Semantic = s.DeleteNamespace(ns)
		}
	default:
		res.Scope = "all"
		if c != nil {
			res.Exact = c.Clear()
		}
		if s != nil {
			res.Semantic = s.Stats().Entries
			s.Purge()
		}
	}
	h.logger.Info("admin purge", "scope", res.Scope, "exact", res.Exact, "semantic", res.Semantic)
	return res
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	b, err := json.MarshalIndent(v, "", "  ")
	if err != nil {
		writeError(w, &apiError{Status: http.StatusInternalServerError, Type: "server_error", Message: err.Error()})
		return
	}
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	w.Write(append(b, '\n'))
}

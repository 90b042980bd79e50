// Package dashboard is zest's built-in dashboard page: one HTML page, its script and styles,
// and the vendored uPlot chart library, all embedded in the binary (the page works offline).
// The page asks for the admin token once, keeps it in the tab's sessionStorage, and polls
// GET /admin/stats with it as a Bearer header; the files themselves hold no data and no
// secret, so they are served without the token.
//
// uPlot is fetched, not written by hand: `go generate ./proxy/dashboard` runs fetch-uplot.sh,
// which vendors a pinned npm version with its LICENSE into assets/vendor/uplot.
package dashboard

import (
	"bytes"
	"embed"
	"io/fs"
	"mime"
	"net/http"
	"path"
	"strings"
	"time"
)

//go:embed assets
var assets embed.FS

// Prefix is where the page lives; its files are under Prefix + "assets/".
const Prefix = "/admin/"

// contentSecurityPolicy lets the page load only its own files and talk only to its own origin.
const contentSecurityPolicy = "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; " +
	"connect-src 'self'; base-uri 'none'; form-action 'none'; frame-ancestors 'none'"

// Serves reports whether path is the page or one of its files, which Handler answers.
func Serves(p string) bool {
	return p == Prefix || strings.HasPrefix(p, Prefix+"assets/")
}

// Handler serves the page at Prefix and its files under Prefix+"assets/" for GET and HEAD
// (405 otherwise); anything else, directories included, is a 404. Every answer carries a
// strict Content-Security-Policy, nosniff, no referrer and Cache-Control: no-cache.
func Handler() http.Handler {
	return http.HandlerFunc(serve)
}

func serve(w http.ResponseWriter, r *http.Request) {
	h := w.Header()
	h.Set("Content-Security-Policy", contentSecurityPolicy)
	h.Set("X-Content-Type-Options", "nosniff")
	h.Set("Referrer-Policy", "no-referrer")
	h.Set("X-Frame-Options", "DENY")
	h.Set("Cache-Control", "no-cache")
	if r.Method != http.MethodGet && r.Method != http.MethodHead {
		h.Set("Allow", "GET, HEAD")
		http.Error(w, "method not allowed", http.StatusMethodNotAllowed)
		return
	}
	name := "assets/index.html"
	if r.URL.Path != Prefix {
		rest, ok := strings.CutPrefix(r.URL.Path, Prefix+"assets/")
		if !ok || rest == "" || strings.HasSuffix(rest, "/") || !fs.ValidPath(rest) {
			http.NotFound(w, r)
			return
		}
		name = "assets/" + rest
	}
	b, err := assets.ReadFile(name)
	if err != nil { // a directory or a missing file
		http.NotFound(w, r)
		return
	}
	if ct := mime.TypeByExtension(path.Ext(name)); ct != "" {
		h.Set("Content-Type", ct)
	}
	http.ServeContent(w, r, name, time.Time{}, bytes.NewReader(b))
}

package dashboard

import (
	"net/http"
	"net/http/httptest"
	"regexp"
	"strings"
	"testing"
)

func TestServes(t *testing.T) {
	tests := map[string]bool{
		"/admin/":                  true,
		"/admin/assets/app.js":     true,
		"/admin/assets/x/y.css":    true,
		"/admin/stats":             false,
		"/admin/cache":             false,
		"/admin":                   false,
		"/admin/assetsx":           false,
		"/v1/chat/completions":     false,
		"/admin/index.html":        false,
		"/admin/assets/../../etc/": true, // Handler refuses it
	}
	for p, want := range tests {
		if got := Serves(p); got != want {
			t.Errorf("Serves(%q) = %v, want %v", p, got, want)
		}
	}
}

// TestHandler: the page, every file it references, and the refusals.
func TestHandler(t *testing.T) {
	get := func(method, path string) *httptest.ResponseRecorder {
		w := httptest.NewRecorder()
		Handler().ServeHTTP(w, httptest.NewRequest(method, path, nil))
		return w
	}
	page := get(http.MethodGet, "/admin/")
	if page.Code != 200 || !strings.HasPrefix(page.Header().Get("Content-Type"), "text/html") {
		t.Fatalf("page: %d %q", page.Code, page.Header().Get("Content-Type"))
	}
	refs := regexp.MustCompile(`(?:src|href)="(assets/[^"]+)"`).FindAllStringSubmatch(page.Body.String(), -1)
	if len(refs) < 4 {
		t.Fatalf("the page references %d files", len(refs))
	}
	for _, ref := range append(refs, []string{"", "assets/vendor/uplot/LICENSE"}) {
		if w := get(http.MethodGet, "/admin/"+ref[1]); w.Code != 200 || w.Body.Len() == 0 {
			t.Errorf("GET %s: %d", ref[1], w.Code)
		}
	}
	tests := []struct {
		method, path string
		want         int
	}{
		{http.MethodHead, "/admin/assets/app.css", 200},
		{http.MethodPost, "/admin/", 405},
		{http.MethodGet, "/admin/assets/", 404},
		{http.MethodGet, "/admin/assets/vendor", 404},
		{http.MethodGet, "/admin/assets/../dashboard.go", 404},
		{http.MethodGet, "/admin/assets/missing.js", 404},
	}
	for _, tt := range tests {
		if w := get(tt.method, tt.path); w.Code != tt.want {
			t.Errorf("%s %s: %d, want %d", tt.method, tt.path, w.Code, tt.want)
		}
	}
	for _, h := range []string{"Content-Security-Policy", "X-Content-Type-Options", "Referrer-Policy"} {
		if page.Header().Get(h) == "" {
			t.Errorf("page lacks %s", h)
		}
	}
}

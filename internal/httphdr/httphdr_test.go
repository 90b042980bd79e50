package httphdr

import (
	"net/http"
	"net/textproto"
	"testing"
)

// TestGetMatchesHeaderGet: for every canonical key, Get answers as http.Header.Get does, on a
// map filled the ways zest's readers fill one (Set, Add, and direct assignment of an empty list).
func TestGetMatchesHeaderGet(t *testing.T) {
	h := http.Header{}
	h.Set("content-type", "application/json")
	h.Add("X-Forwarded-For", "10.0.0.1")
	h.Add("X-Forwarded-For", "10.0.0.2")
	h["Expect"] = []string{}
	h.Set("Authorization", "")
	for _, k := range []string{"Content-Type", "X-Forwarded-For", "Expect", "Authorization", "Upgrade", "Api-Key"} {
		if k != textproto.CanonicalMIMEHeaderKey(k) {
			t.Fatalf("%q is not canonical", k)
		}
		if got, want := Get(h, k), h.Get(k); got != want {
			t.Errorf("Get(%q) = %q, Header.Get = %q", k, got, want)
		}
	}
	if got := Get(h, "content-type"); got != "" {
		t.Errorf("a key not in canonical form found %q", got)
	}
}

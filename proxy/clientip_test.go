package proxy

import (
	"net/http/httptest"
	"net/netip"
	"testing"
)

func TestClientIPTrustedProxies(t *testing.T) {
	h, err := New(Options{Upstream: "http://127.0.0.1:1/v1",
		TrustedProxies: []netip.Prefix{netip.MustParsePrefix("10.0.0.0/8"), netip.MustParsePrefix("fd00::/8")}})
	if err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name, peer, xff, fwd, want string
	}{
		{"untrusted peer: headers ignored", "203.0.113.9:5000", "198.51.100.1", "", "203.0.113.9"},
		{"untrusted peer: Forwarded ignored", "203.0.113.9:5000", "", "for=198.51.100.1", "203.0.113.9"},
		{"trusted peer, no header", "10.1.2.3:5000", "", "", "10.1.2.3"},
		{"trusted peer: X-Forwarded-For", "10.1.2.3:5000", "198.51.100.1", "", "198.51.100.1"},
		{"spoofed entries left of the client", "10.1.2.3:5000", "1.1.1.1, 198.51.100.1", "", "198.51.100.1"},
		{"chain of trusted proxies", "10.1.2.3:5000", "198.51.100.1, 10.9.9.9", "", "198.51.100.1"},
		{"all trusted: leftmost", "10.1.2.3:5000", "10.7.7.7, 10.9.9.9", "", "10.7.7.7"},
		{"garbage stops the walk", "10.1.2.3:5000", "198.51.100.1, junk", "", "10.1.2.3"},
		{"Forwarded wins, with port and quotes", "10.1.2.3:5000", "1.1.1.1", `for="198.51.100.7:4711";proto=https, for=10.2.2.2`, "198.51.100.7"},
		{"Forwarded IPv6", "[fd00::1]:5000", "", `For="[2001:db8::5]:80"`, "2001:db8::5"},
		{"Forwarded obfuscated", "10.1.2.3:5000", "", "for=_hidden", "10.1.2.3"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := httptest.NewRequest("GET", "/v1/models", nil)
			r.RemoteAddr = tt.peer
			if tt.xff != "" {
				r.Header.Set("X-Forwarded-For", tt.xff)
			}
			if tt.fwd != "" {
				r.Header.Set("Forwarded", tt.fwd)
			}
			if got := h.clientIP(r); got != tt.want {
				t.Fatalf("clientIP = %q, want %q", got, tt.want)
			}
		})
	}
	plain, _ := New(Options{Upstream: "http://127.0.0.1:1/v1"})
	r := httptest.NewRequest("GET", "/v1/models", nil)
	r.RemoteAddr, r.Header["X-Forwarded-For"] = "10.1.2.3:1", []string{"198.51.100.1"}
	if got := plain.clientIP(r); got != "10.1.2.3" {
		t.Fatalf("without trusted proxies clientIP = %q", got)
	}
}

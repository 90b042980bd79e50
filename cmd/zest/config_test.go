package main

import (
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
	"time"
)

func writeConfig(t *testing.T, text string) string {
	t.Helper()
	p := filepath.Join(t.TempDir(), "config.toml")
	if err := os.WriteFile(p, []byte(text), 0o600); err != nil {
		t.Fatal(err)
	}
	return p
}

// The repository's config.toml documents the defaults; it must say exactly what the binary does.
func TestRepoConfigIsTheDefaults(t *testing.T) {
	cfg, err := loadConfig("../../config.toml")
	if err != nil {
		t.Fatal(err)
	}
	want := defaultConfig()
	if cfg.Cache.AllowedTypes != nil && len(cfg.Cache.AllowedTypes) == 0 {
		cfg.Cache.AllowedTypes = nil
	}
	if cfg.TrustedProxies != nil && len(cfg.TrustedProxies) == 0 {
		cfg.TrustedProxies = nil
	}
	if !reflect.DeepEqual(cfg, want) {
		t.Errorf("config.toml differs from the built-in defaults:\n file %+v\n code %+v", cfg, want)
	}
}

func TestConfigValues(t *testing.T) {
	p := writeConfig(t, `
listen = "0.0.0.0:9000"
[upstream]
url = "http://127.0.0.1:11434/v1"
timeout = "90s"
[cache]
max_bytes = "64MiB"
ttl = "10m"
namespace = "shared"
allowed_types = ["default", "no_store"]
[ratelimit]
requests_per_minute = 60
[[ratelimit.override]]
identity = "abc"
requests_per_minute = 600
`)
	cfg, err := loadConfig(p)
	if err != nil {
		t.Fatal(err)
	}
	if cfg.Listen != "0.0.0.0:9000" || cfg.Upstream.URL != "http://127.0.0.1:11434/v1" ||
		time.Duration(cfg.Upstream.Timeout) != 90*time.Second || cfg.Cache.MaxBytes != 64<<20 ||
		time.Duration(cfg.Cache.TTL) != 10*time.Minute || cfg.Cache.Namespace != "shared" ||
		len(cfg.Cache.AllowedTypes) != 2 || cfg.RateLimit.RequestsPerMinute != 60 ||
		len(cfg.RateLimit.Override) != 1 || cfg.RateLimit.Override[0].RequestsPerMinute != 600 {
		t.Errorf("decoded config = %+v", cfg)
	}
	if !cfg.Semantic.Enabled || cfg.Semantic.Threshold != 0 || cfg.Semantic.Index != "flat" || cfg.Semantic.Verify != "strict" {
		t.Errorf("unset keys lost their defaults: %+v", cfg.Semantic)
	}
}

func TestConfigErrorsNameKeyAndLine(t *testing.T) {
	for _, tc := range []struct {
		name, text string
		want       []string
	}{
		{"unknown key", "listen = \"x\"\n[cache]\nmaxbytes = \"1MiB\"\n", []string{":3:", `unknown key "cache.maxbytes"`}},
		{"unknown table", "[caches]\nttl = \"1h\"\n", []string{":1:", "caches"}},
		{"bad duration", "[upstream]\ntimeout = \"soon\"\n", []string{"timeout", "duration"}},
		{"bad size", "[cache]\nmax_bytes = \"lots\"\n", []string{"max_bytes", "size"}},
		{"bad namespace", "[cache]\n\nnamespace = \"team\"\n", []string{":3:", "cache.namespace", "key, user or shared"}},
		{"bad type", "[cache]\ndefault_type = \"forever\"\n", []string{":2:", "cache.default_type"}},
		{"bad threshold", "[semantic]\nthreshold = 1.5\n", []string{":2:", "semantic.threshold"}},
		{"bad verify", "[semantic]\nembedder = \"local\"\nverify = \"lenient\"\n", []string{":3:", "semantic.verify", "strict or guards"}},
		{"empty verify", "[semantic]\nverify = \"\"\n", []string{":2:", "semantic.verify"}},
		{"negative limit", "[ratelimit]\nrequests_per_minute = -1\n", []string{":2:", "ratelimit.requests_per_minute"}},
		{"syntax", "[cache\n", []string{"config.toml:", "table name"}},
		{"bad redis url", "[redis]\nurl = \"http://:hunter2@h:1\"\n", []string{":2:", "redis.url"}},
		{"bad trusted proxy", "trusted_proxies = [\"10.0.0.0/8\", \"lb.internal\"]\n", []string{":1:", "trusted_proxies", "lb.internal"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := loadConfig(writeConfig(t, tc.text))
			if err == nil {
				t.Fatal("no error")
			}
			msg := err.Error()
			if strings.Contains(msg, "\n") {
				t.Errorf("error spans lines: %q", msg)
			}
			for _, w := range tc.want {
				if !strings.Contains(msg, w) {
					t.Errorf("error %q does not contain %q", msg, w)
				}
			}
		})
	}
}

func TestParseSize(t *testing.T) {
	for in, want := range map[string]int64{"256MiB": 256 << 20, "32MB": 32e6, "1024": 1024, "64KiB": 64 << 10, "1.5GiB": 3 << 29} {
		if got, err := parseSize(in); err != nil || got != want {
			t.Errorf("parseSize(%q) = %d, %v; want %d", in, got, err, want)
		}
	}
}

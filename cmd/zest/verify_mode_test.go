package main

import (
	"context"
	"log/slog"
	"testing"
	"time"

	"github.com/zest-proxy/zest/semantic"
)

// TestVerifyModeWired checks that semantic.verify reaches the verifier: with the local
// embedder, strict refuses a pair that differs in a content word the guards do not cover, while
// guards lets the cosine decide.
func TestVerifyModeWired(t *testing.T) {
	const stored, asked = "What is a good diet for a dog?", "What is a healthy diet for a dog?"
	for _, tc := range []struct {
		mode string
		want bool
	}{
		{"strict", false},
		{"guards", true},
	} {
		t.Run(tc.mode, func(t *testing.T) {
			cfg, err := loadConfig(writeConfig(t, "[semantic]\nverify = \""+tc.mode+"\"\n"))
			if err != nil {
				t.Fatal(err)
			}
			sc, err := buildSemantic(cfg, func(string) string { return "" }, slog.New(slog.DiscardHandler), nil)
			if err != nil {
				t.Fatal(err)
			}
			ctx := context.Background()
			q := semantic.Query{Namespace: "t", Partition: "p", Prompt: stored}
			if err := sc.Store(ctx, q, "id", []byte("answer"), time.Hour); err != nil {
				t.Fatal(err)
			}
			q.Prompt = asked
			_, hit, err := sc.Lookup(ctx, q)
			if err != nil {
				t.Fatal(err)
			}
			if hit != tc.want {
				t.Errorf("verify = %q: hit = %v, want %v", tc.mode, hit, tc.want)
			}
		})
	}
}

package ratelimit

import (
	"net/http"
	"testing"
	"time"
)

func TestWriteHeadersAndMessage(t *testing.T) {
	tests := []struct {
		name    string
		lim     Limits
		setup   func(l *Limiter, clk *fakeClock) // spends before the decision
		est     int
		want    map[string]string // exact header values; absent keys must be unset
		message string
	}{
		{
			name: "allowed, both limits",
			lim:  Limits{RequestsPerMinute: 60, TokensPerMinute: 10000},
			est:  1000,
			want: map[string]string{
				"X-Ratelimit-Limit-Requests":     "60",
				"X-Ratelimit-Remaining-Requests": "59",
				"X-Ratelimit-Reset-Requests":     "1s",
				"X-Ratelimit-Limit-Tokens":       "10000",
				"X-Ratelimit-Remaining-Tokens":   "9000",
				"X-Ratelimit-Reset-Tokens":       "6s",
				"Ratelimit-Policy":               `"requests";q=60;w=60, "tokens";q=10000;qu="tokens";w=60`,
				"Ratelimit":                      `"requests";r=59;t=1, "tokens";r=9000;t=6`,
			},
		},
		{
			name:  "rejected on requests, fractional spacing",
			lim:   Limits{RequestsPerMinute: 7},
			setup: func(l *Limiter, _ *fakeClock) { admitN(l, "u", 7, 0) },
			want: map[string]string{
				"X-Ratelimit-Limit-Requests":     "7",
				"X-Ratelimit-Remaining-Requests": "0",
				"X-Ratelimit-Reset-Requests":     "1m0s",
				"Ratelimit-Policy":               `"requests";q=7;w=60`,
				"Ratelimit":                      `"requests";r=0;t=60`,
				"Retry-After":                    "9",
				"Retry-After-Ms":                 "8572",
			},
			message: "Rate limit reached for requests per min (RPM): Limit 7, Used 7, Requested 1. Please try again in 8.572s.",
		},
		{
			name: "rejected on tokens, sub-second",
			lim:  Limits{TokensPerMinute: 600},
			setup: func(l *Limiter, clk *fakeClock) {
				admitN(l, "u", 1, 590)
				clk.Advance(500 * time.Millisecond) // +5 tokens: 15 left
			},
			est: 27, // 12 short: 1.2s
			want: map[string]string{
				"X-Ratelimit-Limit-Tokens":     "600",
				"X-Ratelimit-Remaining-Tokens": "15",
				"X-Ratelimit-Reset-Tokens":     "58.5s",
				"Ratelimit-Policy":             `"tokens";q=600;qu="tokens";w=60`,
				"Ratelimit":                    `"tokens";r=15;t=59`,
				"Retry-After":                  "2",
				"Retry-After-Ms":               "1200",
			},
			message: "Rate limit reached for tokens per min (TPM): Limit 600, Used 585, Requested 27. Please try again in 1.2s.",
		},
		{
			name:  "burst shown in the message",
			lim:   Limits{RequestsPerMinute: 60, BurstRequests: 20},
			setup: func(l *Limiter, _ *fakeClock) { admitN(l, "u", 20, 0) },
			want: map[string]string{
				"X-Ratelimit-Limit-Requests":     "60",
				"X-Ratelimit-Remaining-Requests": "0",
				"X-Ratelimit-Reset-Requests":     "20s",
				"Ratelimit-Policy":               `"requests";q=60;w=60`,
				"Ratelimit":                      `"requests";r=0;t=20`,
				"Retry-After":                    "1",
				"Retry-After-Ms":                 "1000",
			},
			message: "Rate limit reached for requests per min (RPM): Limit 60 (burst 20), Used 20, Requested 1. Please try again in 1s.",
		},
		{
			name: "never fits",
			lim:  Limits{TokensPerMinute: 1000},
			est:  4000,
			want: map[string]string{
				"X-Ratelimit-Limit-Tokens":     "1000",
				"X-Ratelimit-Remaining-Tokens": "1000",
				"X-Ratelimit-Reset-Tokens":     "0s",
				"Ratelimit-Policy":             `"tokens";q=1000;qu="tokens";w=60`,
				"Ratelimit":                    `"tokens";r=1000;t=0`,
			},
			message: "Request too large for tokens per min (TPM): Limit 1000, Requested 4000. It can never be admitted: reduce the prompt or the maximum output tokens so the request needs at most 1000 tokens.",
		},
		{
			name:  "concurrency only: no rate headers",
			lim:   Limits{MaxConcurrent: 1},
			setup: func(l *Limiter, _ *fakeClock) { l.Admit("u", 0) },
			want:  map[string]string{},
			message: "Too many concurrent requests: Limit 1, In flight 1. " +
				"Please try again when one of your requests has finished.",
		},
	}
	all := []string{
		"X-Ratelimit-Limit-Requests", "X-Ratelimit-Remaining-Requests", "X-Ratelimit-Reset-Requests",
		"X-Ratelimit-Limit-Tokens", "X-Ratelimit-Remaining-Tokens", "X-Ratelimit-Reset-Tokens",
		"Ratelimit-Policy", "Ratelimit", "Retry-After", "Retry-After-Ms",
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			clk := newClock()
			l := newLimiter(t, clk, Options{Default: tt.lim})
			if tt.setup != nil {
				tt.setup(l, clk)
			}
			d, tk := l.Admit("u", tt.est)
			defer tk.Done(0, false)
			h := http.Header{}
			d.WriteHeaders(h)
			for _, k := range all {
				want, wantSet := tt.want[k]
				if got, set := h[k]; set != wantSet || (set && (len(got) != 1 || got[0] != want)) {
					t.Errorf("%s = %q (set %v), want %q (set %v)", k, got, set, want, wantSet)
				}
			}
			if got := d.Message(); got != tt.message {
				t.Errorf("Message() =\n  %q\nwant\n  %q", got, tt.message)
			}
		})
	}
}

package ratelimit

import (
	"net/http"
	"strconv"
	"strings"
	"time"
)

// Reasons a request is rejected (Decision.Reason). They double as the
// OpenAI error "type" of a 429 body.
const (
	ReasonRequests    = "requests"
	ReasonTokens      = "tokens"
	ReasonConcurrency = "concurrency"
)

// Window is the state of one limit after a decision, for response headers.
// A zero Limit means the limit is not configured.
type Window struct {
	Limit     int           // units per minute (for Concurrency: the cap)
	Size      int           // bucket size: Limit, or the smaller burst
	Remaining int           // whole units available now (0 while in debt)
	Reset     time.Duration // until the bucket is full again
}

// Decision is the outcome of Admit or Hit.
type Decision struct {
	Allowed bool
	// Reason is "" when allowed, else ReasonRequests, ReasonTokens or
	// ReasonConcurrency.
	Reason string
	// Never is set when the token estimate exceeds the token bucket's
	// size: the request can never be admitted as it is, and RetryAfter is 0.
	Never bool
	// RetryAfter is how long to wait before the same request is admitted
	// (rounded up to a millisecond), provided nothing else consumes the
	// identity's allowance meanwhile. 0 when allowed, for Never and for a
	// concurrency rejection (a slot frees when a request ends, not at a time).
	RetryAfter time.Duration
	// Requested is the number of tokens asked for (after clamping).
	Requested int
	// Requests, Tokens and Concurrency describe each limit; zero when the
	// limit is not configured. After an admission they include its charge.
	Requests, Tokens, Concurrency Window
}

// windowOf describes a dimension with the given debt.
func windowOf(d dim, debt int64) Window {
	if !d.on() {
		return Window{}
	}
	return Window{
		Limit:     int(d.rate),
		Size:      int(d.size),
		Remaining: int(d.remaining(debt)),
		Reset:     time.Duration(d.untilFull(debt)) * time.Microsecond,
	}
}

// roundUpMs converts µs to a Duration rounded up to a whole millisecond.
func roundUpMs(us int64) time.Duration {
	return time.Duration((us+999)/1000) * time.Millisecond
}

// ceilDur rounds d up to a multiple of unit.
func ceilDur(d, unit time.Duration) time.Duration {
	return (d + unit - 1) / unit * unit
}

// WriteHeaders sets the rate-limit response headers of d on h:
// OpenAI's x-ratelimit-limit-requests, x-ratelimit-remaining-requests and
// x-ratelimit-reset-requests (Go duration text rounded up to a millisecond,
// like "6m0s" or "1.5s") and the -tokens variants; the IETF RateLimit-Policy
// and RateLimit fields (draft-ietf-httpapi-ratelimit-headers, policies
// "requests" and "tokens", q = per-minute limit, w = 60, r = remaining,
// t = whole seconds until full); and on a rejection with a wait, Retry-After
// (whole seconds, rounded up) and retry-after-ms. A family whose limit is 0
// is omitted. The tokens policy carries qu="tokens", a unit the draft's
// registry does not list yet.
func (d Decision) WriteHeaders(h http.Header) {
	var policy, state []string
	for _, f := range [...]struct {
		name string
		w    Window
	}{{ReasonRequests, d.Requests}, {ReasonTokens, d.Tokens}} {
		if f.w.Limit == 0 {
			continue
		}
		h.Set("x-ratelimit-limit-"+f.name, strconv.Itoa(f.w.Limit))
		h.Set("x-ratelimit-remaining-"+f.name, strconv.Itoa(f.w.Remaining))
		h.Set("x-ratelimit-reset-"+f.name, ceilDur(f.w.Reset, time.Millisecond).String())
		p := `"` + f.name + `";q=` + strconv.Itoa(f.w.Limit)
		if f.name == ReasonTokens {
			p += `;qu="tokens"`
		}
		policy = append(policy, p+";w=60")
		state = append(state, `"`+f.name+`";r=`+strconv.Itoa(f.w.Remaining)+
			";t="+strconv.FormatInt(int64(ceilDur(f.w.Reset, time.Second)/time.Second), 10))
	}
	if len(policy) > 0 {
		h.Set("RateLimit-Policy", strings.Join(policy, ", "))
		h.Set("RateLimit", strings.Join(state, ", "))
	}
	if !d.Allowed && d.RetryAfter > 0 {
		h.Set("Retry-After", strconv.FormatInt(int64(ceilDur(d.RetryAfter, time.Second)/time.Second), 10))
		h.Set("retry-after-ms", strconv.FormatInt(d.RetryAfter.Milliseconds(), 10))
	}
}

// Message returns the text of a rejection in OpenAI's style, e.g.
// "Rate limit reached for requests per min (RPM): Limit 60, Used 60,
// Requested 1. Please try again in 1.2s." It is "" when allowed. "Used" is
// the bucket size minus what remains; a burst smaller than the limit is
// shown next to it.
func (d Decision) Message() string {
	if d.Allowed {
		return ""
	}
	switch {
	case d.Never:
		w := d.Tokens
		return "Request too large for tokens per min (TPM): Limit " + limitText(w) +
			", Requested " + strconv.Itoa(d.Requested) +
			". It can never be admitted: reduce the prompt or the maximum output tokens so the request needs at most " +
			strconv.Itoa(w.Size) + " tokens."
	case d.Reason == ReasonConcurrency:
		w := d.Concurrency
		return "Too many concurrent requests: Limit " + strconv.Itoa(w.Limit) +
			", In flight " + strconv.Itoa(w.Limit-w.Remaining) +
			". Please try again when one of your requests has finished."
	}
	what, w, req := "requests per min (RPM)", d.Requests, 1
	if d.Reason == ReasonTokens {
		what, w, req = "tokens per min (TPM)", d.Tokens, d.Requested
	}
	return "Rate limit reached for " + what + ": Limit " + limitText(w) +
		", Used " + strconv.Itoa(w.Size-w.Remaining) +
		", Requested " + strconv.Itoa(req) +
		". Please try again in " + d.RetryAfter.String() + "."
}

// limitText is the limit, with the burst when it makes the bucket smaller.
func limitText(w Window) string {
	s := strconv.Itoa(w.Limit)
	if w.Size < w.Limit {
		s += " (burst " + strconv.Itoa(w.Size) + ")"
	}
	return s
}

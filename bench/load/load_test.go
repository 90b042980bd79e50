package load

import (
	"context"
	"net/http"
	"net/http/httptest"
	"net/url"
	"sync"
	"testing"
	"time"

	"github.com/zest-proxy/zest/bench/mock"
)

// fakeClock is virtual time: sleeping and serving requests advance it.
type fakeClock struct {
	mu  sync.Mutex
	now time.Time
}

func (c *fakeClock) Now() time.Time { c.mu.Lock(); defer c.mu.Unlock(); return c.now }

func (c *fakeClock) SleepUntil(_ context.Context, t time.Time) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if t.After(c.now) {
		c.now = t
	}
}

func (c *fakeClock) advance(d time.Duration) { c.mu.Lock(); c.now = c.now.Add(d); c.mu.Unlock() }

// slowDoer takes a fixed virtual time per request.
type slowDoer struct {
	clock *fakeClock
	cost  time.Duration
}

func (d slowDoer) Do(context.Context, []byte) Outcome {
	d.clock.advance(d.cost)
	return Outcome{Status: 200}
}
func (slowDoer) Close() error { return nil }

func near(got, want time.Duration) bool {
	diff := got - want
	if diff < 0 {
		diff = -diff
	}
	return diff <= want/100+time.Microsecond
}

func TestOpenLoopCountsQueueingDelay(t *testing.T) {
	tests := []struct {
		name        string
		rate        float64
		cost        time.Duration
		wantService time.Duration
		wantP50     time.Duration
		wantMax     time.Duration
	}{
		// 100/s, one worker, 1 ms per request: never queues.
		{"fast target", 100, time.Millisecond, time.Millisecond, time.Millisecond, time.Millisecond},
		// 100/s but 50 ms per request: request k is sent at 50k ms although
		// scheduled at 10k ms, so its latency is 50 + 40k ms.
		{"slow target", 100, 50 * time.Millisecond, 50 * time.Millisecond, 50*time.Millisecond + 49*40*time.Millisecond, 50*time.Millisecond + 99*40*time.Millisecond},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			clock := &fakeClock{now: time.Unix(1000, 0)}
			res, err := Run(context.Background(), Config{
				Gen:      func(uint64, []byte) []byte { return nil },
				NewDoer:  func() Doer { return slowDoer{clock, tc.cost} },
				Rate:     tc.rate,
				Duration: time.Second,
				Clock:    clock,
			})
			if err != nil {
				t.Fatal(err)
			}
			if res.Requests != 100 || res.Responses != 100 {
				t.Fatalf("sent %d, answered %d; want 100", res.Requests, res.Responses)
			}
			if got := res.Service.Quantile(0.99); !near(got, tc.wantService) {
				t.Errorf("service p99 %v, want %v", got, tc.wantService)
			}
			if got := res.Latency.Quantile(0.5); !near(got, tc.wantP50) {
				t.Errorf("latency p50 %v, want %v", got, tc.wantP50)
			}
			if got := res.Latency.Max(); !near(got, tc.wantMax) {
				t.Errorf("latency max %v, want %v", got, tc.wantMax)
			}
		})
	}
}

func TestClosedLoop(t *testing.T) {
	clock := &fakeClock{now: time.Unix(1000, 0)}
	res, err := Run(context.Background(), Config{
		Gen:      func(uint64, []byte) []byte { return nil },
		NewDoer:  func() Doer { return slowDoer{clock, 10 * time.Millisecond} },
		Duration: time.Second,
		Clock:    clock,
	})
	if err != nil {
		t.Fatal(err)
	}
	if res.Responses != 100 {
		t.Errorf("closed loop at 10 ms/request for 1 s answered %d, want 100", res.Responses)
	}
	if got := res.Throughput(); got < 99 || got > 101 {
		t.Errorf("throughput %.1f, want 100", got)
	}
	if got := res.Latency.Quantile(0.99); !near(got, 10*time.Millisecond) {
		t.Errorf("closed-loop latency %v, want 10ms", got)
	}
}

func TestRunRejectsBadConfig(t *testing.T) {
	if _, err := Run(context.Background(), Config{}); err == nil {
		t.Error("empty config accepted")
	}
}

func TestConnAgainstMock(t *testing.T) {
	m := mock.New(mock.Options{Chunks: 3})
	var mu sync.Mutex
	var closeNext bool
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("X-Cache-Status", "HIT")
		w.Header().Set("X-Cache-Type", "exact")
		mu.Lock()
		if closeNext {
			w.Header().Set("Connection", "close")
			closeNext = false
		}
		mu.Unlock()
		m.ServeHTTP(w, r)
	}))
	defer srv.Close()
	u, _ := url.Parse(srv.URL)
	body := []byte(`{"model":"m","messages":[{"role":"user","content":"hi"}]}`)
	stream := []byte(`{"model":"m","stream":true,"messages":[{"role":"user","content":"hi"}]}`)

	tests := []struct {
		name       string
		body       []byte
		hdr        []string
		stream     bool
		closeFirst bool
		wantStatus int
		wantFirst  bool
	}{
		{"plain", body, nil, false, false, 200, false},
		{"stream", stream, nil, true, false, 200, true},
		{"connection close then reuse", body, nil, false, true, 200, false},
		{"429", body, []string{"X-Mock-Status: 429"}, false, false, 429, false},
	}
	c := &Conn{Addr: u.Host}
	defer c.Close()
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			mu.Lock()
			closeNext = tc.closeFirst
			mu.Unlock()
			c.Stream = tc.stream
			req := BuildRequest(nil, "POST", u.Host, "/v1/chat/completions", tc.hdr, tc.body)
			for range 2 { // twice: the connection must be reusable (or redialled)
				out := c.Do(context.Background(), req)
				if out.Err != nil {
					t.Fatal(out.Err)
				}
				if out.Status != tc.wantStatus || out.CacheStatus != "HIT" || out.CacheType != "exact" || out.Bytes == 0 {
					t.Fatalf("outcome %+v", out)
				}
				if (out.FirstToken > 0) != tc.wantFirst {
					t.Errorf("first token %v, want set=%v", out.FirstToken, tc.wantFirst)
				}
				if tc.wantStatus == 429 && !out.RetryAfter {
					t.Error("Retry-After not seen")
				}
			}
		})
	}

	// An open-loop run against the mock schedules exactly rate × duration requests.
	res, err := Run(context.Background(), Config{
		Gen: func(i uint64, dst []byte) []byte {
			return BuildRequest(dst, "POST", u.Host, "/v1/chat/completions", nil, body)
		},
		NewDoer:  func() Doer { return &Conn{Addr: u.Host} },
		Rate:     200,
		Conns:    4,
		Duration: 300 * time.Millisecond,
	})
	if err != nil {
		t.Fatal(err)
	}
	if res.Requests != 60 || res.Responses != 60 || res.Status[200] != 60 || res.Cache["HIT+exact"] != 60 {
		t.Errorf("run: %d sent, %d answered, statuses %v, cache %v", res.Requests, res.Responses, res.Status, res.Cache)
	}
}

func TestFirstDelta(t *testing.T) {
	tests := []struct {
		in   string
		want bool
	}{
		{`data: {"delta":{"role":"assistant","content":""}}`, false},
		{`data: {"delta":{"content":"Hi"}}`, true},
		{`data: {"delta":{"content":"`, false},
		{`{"tool_calls":[{"function":{"name":"f","arguments":""}}]}`, false},
		{`{"tool_calls":[{"function":{"arguments":"{\"q"}}]}`, true},
		{`{"content":"","x":1} {"content":"a"}`, true},
	}
	for _, tc := range tests {
		t.Run(tc.in, func(t *testing.T) {
			if got := firstDelta([]byte(tc.in)); got != tc.want {
				t.Errorf("firstDelta = %v, want %v", got, tc.want)
			}
		})
	}
	// Split across reads: the Conn keeps an overlap so a key cut in two is found.
	full := `data: {"choices":[{"delta":{"content":"Hello"}}]}`
	for cut := 1; cut < len(full); cut++ {
		a, b := full[:cut], full[cut:]
		scratch := []byte(a)
		hit := firstDelta(scratch)
		scan := len(scratch)
		scratch = append(scratch, b...)
		hit = hit || firstDelta(scratch[max(0, scan-16):])
		if !hit {
			t.Fatalf("missed first delta split at %d: %q | %q", cut, a, b)
		}
	}
}

package semantic

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"
	"time"
)

// fakeEmbeddings serves /v1/embeddings: input i embeds as [len(input_i), i+1, 0],
// unnormalised, with the data array in reverse order.
func fakeEmbeddings(t *testing.T, requests *atomic.Int32) *httptest.Server {
	t.Helper()
	return httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		requests.Add(1)
		if r.Method != http.MethodPost || r.URL.Path != "/v1/embeddings" {
			http.Error(w, "wrong route "+r.Method+" "+r.URL.Path, http.StatusNotFound)
			return
		}
		if got := r.Header.Get("Authorization"); got != "Bearer sk-test" {
			http.Error(w, "bad auth "+got, http.StatusUnauthorized)
			return
		}
		var req struct {
			Model string   `json:"model"`
			Input []string `json:"input"`
		}
		if err := json.NewDecoder(r.Body).Decode(&req); err != nil || req.Model != "embed-small" {
			http.Error(w, fmt.Sprintf("bad body: %v %q", err, req.Model), http.StatusBadRequest)
			return
		}
		var data []string
		for i := len(req.Input) - 1; i >= 0; i-- {
			data = append(data, fmt.Sprintf(`{"object":"embedding","index":%d,"embedding":[%d,%d,0]}`, i, len(req.Input[i]), i+1))
		}
		fmt.Fprintf(w, `{"object":"list","model":"embed-small","data":[%s],"usage":{"prompt_tokens":1,"total_tokens":1}}`, strings.Join(data, ","))
	}))
}

func TestUpstreamEmbed(t *testing.T) {
	var requests atomic.Int32
	srv := fakeEmbeddings(t, &requests)
	defer srv.Close()
	u, err := NewUpstream(UpstreamOptions{BaseURL: srv.URL + "/v1/", Model: "embed-small", APIKey: "sk-test", MaxBatch: 2})
	if err != nil {
		t.Fatal(err)
	}
	if u.Dim() != 0 {
		t.Errorf("Dim before any response = %d, want 0", u.Dim())
	}
	texts := []string{"abc", "abcd", "a", "", "abcdefgh"}
	vecs, err := u.Embed(context.Background(), texts)
	if err != nil {
		t.Fatal(err)
	}
	if got := requests.Load(); got != 3 {
		t.Errorf("%d requests for 5 texts in batches of 2, want 3", got)
	}
	if u.Dim() != 3 {
		t.Errorf("Dim = %d, want 3", u.Dim())
	}
	for i, v := range vecs {
		// Within its batch, text i had index i%2: raw vector (len, i%2+1, 0).
		x, y := float64(len(texts[i])), float64(i%2+1)
		n := math.Hypot(x, y)
		if math.Abs(float64(v[0])-x/n) > 1e-6 || math.Abs(float64(v[1])-y/n) > 1e-6 {
			t.Errorf("text %d: got %v, want normalised [%v %v 0]", i, v, x, y)
		}
	}
}

func TestUpstreamErrors(t *testing.T) {
	tests := []struct {
		name    string
		handler http.HandlerFunc
		want    string
	}{
		{"status", func(w http.ResponseWriter, r *http.Request) {
			http.Error(w, `{"error":{"message":"overloaded"}}`, http.StatusServiceUnavailable)
		}, "status 503"},
		{"malformed", func(w http.ResponseWriter, r *http.Request) {
			fmt.Fprint(w, `{"data":[`)
		}, "decode"},
		{"wrong count", func(w http.ResponseWriter, r *http.Request) {
			fmt.Fprint(w, `{"data":[{"index":0,"embedding":[1,0]}]}`)
		}, "got 1 embeddings for 2 inputs"},
		{"repeated index", func(w http.ResponseWriter, r *http.Request) {
			fmt.Fprint(w, `{"data":[{"index":0,"embedding":[1,0]},{"index":0,"embedding":[0,1]}]}`)
		}, "repeated index"},
		{"dimension changes", func(w http.ResponseWriter, r *http.Request) {
			fmt.Fprint(w, `{"data":[{"index":0,"embedding":[1,0]},{"index":1,"embedding":[0,1,0]}]}`)
		}, "dimension 3, want 2"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			srv := httptest.NewServer(tt.handler)
			defer srv.Close()
			u, err := NewUpstream(UpstreamOptions{BaseURL: srv.URL, Model: "m"})
			if err != nil {
				t.Fatal(err)
			}
			_, err = u.Embed(context.Background(), []string{"a", "b"})
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Errorf("err = %v, want it to mention %q", err, tt.want)
			}
		})
	}
}

func TestUpstreamTimeout(t *testing.T) {
	release := make(chan struct{})
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		select { // hang until the client gives up
		case <-r.Context().Done():
		case <-release:
		}
	}))
	defer srv.Close()
	defer close(release)
	u, err := NewUpstream(UpstreamOptions{BaseURL: srv.URL, Model: "m", Timeout: 20 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := u.Embed(context.Background(), []string{"a"}); !errors.Is(err, context.DeadlineExceeded) {
		t.Errorf("err = %v, want a deadline error", err)
	}
}

func TestNewUpstreamValidates(t *testing.T) {
	for _, o := range []UpstreamOptions{{Model: "m"}, {BaseURL: "http://x/v1"}} {
		if _, err := NewUpstream(o); err == nil {
			t.Errorf("NewUpstream(%+v) succeeded", o)
		}
	}
}

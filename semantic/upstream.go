package semantic

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strings"
	"time"
)

// UpstreamOptions configures NewUpstream.
type UpstreamOptions struct {
	// BaseURL is the OpenAI-style base URL ending in its version path, e.g.
	// "https://api.openai.com/v1"; requests go to BaseURL+"/embeddings". Required.
	BaseURL string
	// Model is the embedding model name sent upstream. Required.
	Model string
	// APIKey, when set, is sent as "Authorization: Bearer APIKey".
	APIKey string
	// Client sends the requests; nil means a client of its own with default
	// transport settings.
	Client *http.Client
	// Timeout bounds each Embed call on top of ctx's deadline; 0 means 5s.
	Timeout time.Duration
	// Dim is the model's output dimension if known; 0 means learn it from the
	// first successful response (Dim returns 0 until then).
	Dim int
	// MaxBatch is the most texts sent in one request; 0 means 256. Larger
	// inputs are split into several requests.
	MaxBatch int
}

// Upstream embeds texts with the upstream's OpenAI-compatible /v1/embeddings
// endpoint. It is safe for concurrent use. Every failure (transport, status,
// malformed body, wrong count or dimension) is returned as an error so the
// caller can fail open.
type Upstream struct {
	url, model, key string
	client          *http.Client
	timeout         time.Duration
	maxBatch        int
	dim             dimOnce
}

// maxEmbedResponse bounds how much of an embeddings response is read.
const maxEmbedResponse = 64 << 20

// NewUpstream returns an Upstream embedder; it does no I/O.
func NewUpstream(opts UpstreamOptions) (*Upstream, error) {
	if opts.BaseURL == "" || opts.Model == "" {
		return nil, errors.New("semantic: upstream embedder needs BaseURL and Model")
	}
	u := &Upstream{
		url:      strings.TrimSuffix(opts.BaseURL, "/") + "/embeddings",
		model:    opts.Model,
		key:      opts.APIKey,
		client:   opts.Client,
		timeout:  opts.Timeout,
		maxBatch: opts.MaxBatch,
	}
	if u.client == nil {
		u.client = &http.Client{}
	}
	if u.timeout <= 0 {
		u.timeout = 5 * time.Second
	}
	if u.maxBatch <= 0 {
		u.maxBatch = 256
	}
	if opts.Dim > 0 {
		u.dim.set(opts.Dim)
	}
	return u, nil
}

// Dim returns the model's dimension: UpstreamOptions.Dim, or what the first
// successful response showed, or 0 before that.
func (u *Upstream) Dim() int { return u.dim.get() }

type embedRequest struct {
	Model string   `json:"model"`
	Input []string `json:"input"`
}

type embedResponse struct {
	Data []struct {
		Index     int       `json:"index"`
		Embedding []float32 `json:"embedding"`
	} `json:"data"`
}

// Embed sends texts upstream in batches of at most MaxBatch and returns the
// L2-normalised vectors in input order.
func (u *Upstream) Embed(ctx context.Context, texts []string) ([][]float32, error) {
	if len(texts) == 0 {
		return nil, nil
	}
	ctx, cancel := context.WithTimeout(ctx, u.timeout)
	defer cancel()
	out := make([][]float32, 0, len(texts))
	for start := 0; start < len(texts); start += u.maxBatch {
		end := min(start+u.maxBatch, len(texts))
		vecs, err := u.embedBatch(ctx, texts[start:end])
		if err != nil {
			return nil, err
		}
		out = append(out, vecs...)
	}
	return out, nil
}

func (u *Upstream) embedBatch(ctx context.Context, texts []string) ([][]float32, error) {
	body, err := json.Marshal(embedRequest{Model: u.model, Input: texts})
	if err != nil {
		return nil, fmt.Errorf("semantic: upstream embed: %w", err)
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, u.url, bytes.NewReader(body))
	if err != nil {
		return nil, fmt.Errorf("semantic: upstream embed: %w", err)
	}
	req.Header.Set("Content-Type", "application/json")
	if u.key != "" {
		req.Header.Set("Authorization", "Bearer "+u.key)
	}
	resp, err := u.client.Do(req)
	if err != nil {
		return nil, fmt.Errorf("semantic: upstream embed: %w", err)
	}
	defer resp.Body.Close()
	raw, err := io.ReadAll(io.LimitReader(resp.Body, maxEmbedResponse))
	if err != nil {
		return nil, fmt.Errorf("semantic: upstream embed: read: %w", err)
	}
	if resp.StatusCode != http.StatusOK {
		return nil, fmt.Errorf("semantic: upstream embed: status %d: %.200s", resp.StatusCode, raw)
	}
	var er embedResponse
	if err := json.Unmarshal(raw, &er); err != nil {
		return nil, fmt.Errorf("semantic: upstream embed: decode: %w", err)
	}
	if len(er.Data) != len(texts) {
		return nil, fmt.Errorf("semantic: upstream embed: got %d embeddings for %d inputs", len(er.Data), len(texts))
	}
	out := make([][]float32, len(texts))
	for _, d := range er.Data {
		if d.Index < 0 || d.Index >= len(texts) || out[d.Index] != nil {
			return nil, fmt.Errorf("semantic: upstream embed: bad or repeated index %d", d.Index)
		}
		if len(d.Embedding) == 0 {
			return nil, fmt.Errorf("semantic: upstream embed: empty embedding at index %d", d.Index)
		}
		if want := u.dim.setIfZero(len(d.Embedding)); want != len(d.Embedding) {
			return nil, fmt.Errorf("semantic: upstream embed: dimension %d, want %d", len(d.Embedding), want)
		}
		normalize(d.Embedding)
		out[d.Index] = d.Embedding
	}
	return out, nil
}

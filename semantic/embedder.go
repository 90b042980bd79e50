// Package semantic is zest's semantic cache: embedders that turn a prompt
// into a vector, and a partitioned, TTL-bounded vector index over chromem-go
// that finds a stored answer to a prompt that means the same thing.
//
// The package compares only the last user message by embedding. Everything
// else that can change an answer (namespace, model, parameters, system
// prompt, tools, response_format, earlier turns) is folded by the caller into
// an opaque partition string that must match exactly.
package semantic

import (
	"context"
	"math"
)

// Embedder turns texts into vectors. Implementations return one vector per
// text, each of length Dim() and L2-normalised, except that a text with
// nothing to embed (for the local embedder: no known word) yields the zero
// vector. The caller owns the returned slices. Embed must honour ctx's
// deadline and be safe for concurrent use.
type Embedder interface {
	Embed(ctx context.Context, texts []string) ([][]float32, error)
	Dim() int
}

var (
	_ Embedder = (*Local)(nil)
	_ Embedder = (*Upstream)(nil)
	_ Embedder = EmbedderFunc{}
)

// EmbedderFunc adapts a function to the Embedder interface.
type EmbedderFunc struct {
	Fn func(ctx context.Context, texts []string) ([][]float32, error)
	N  int // the dimension Dim reports
}

// Embed calls f.Fn.
func (f EmbedderFunc) Embed(ctx context.Context, texts []string) ([][]float32, error) {
	return f.Fn(ctx, texts)
}

// Dim returns f.N.
func (f EmbedderFunc) Dim() int { return f.N }

// normalize scales v to unit length in place and reports whether v was
// non-zero (a zero vector is left as it is).
func normalize(v []float32) bool {
	var ss float64
	for _, x := range v {
		ss += float64(x) * float64(x)
	}
	if ss == 0 || math.IsNaN(ss) || math.IsInf(ss, 0) {
		return false
	}
	inv := float32(1 / math.Sqrt(ss))
	for i := range v {
		v[i] *= inv
	}
	return true
}

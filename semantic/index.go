package semantic

import (
	"context"
	"errors"
	"fmt"

	"github.com/philippgille/chromem-go"
)

// IndexKind selects the vector index behind each partition.
type IndexKind string

const (
	// IndexFlat is a contiguous float32 array per partition, scanned linearly
	// behind a quantised pre-scan that skips vectors which provably cannot
	// match (results are exactly those of a float32 scan), split over two
	// goroutines once a partition holds over 64M floats.
	// It is the default because it measured 3–10× less CPU per lookup than
	// chromem-go's query on this 2-core machine, and far less wall time under
	// load: chromem sends every document through a channel to worker
	// goroutines and takes a mutex per document (see BenchmarkLookup and
	// BenchmarkLookupChromem).
	IndexFlat IndexKind = "flat"
	// IndexChromem is one chromem-go in-memory collection per partition.
	IndexChromem IndexKind = "chromem"
)

// match is one query result.
type match struct {
	id  string
	sim float32
}

// vectorIndex is the nearest-neighbour index of one partition. Vectors are
// unit length, so the dot product is the cosine similarity. Callers
// serialise add and remove against everything else (the Cache's lock);
// query may run concurrently with other queries.
type vectorIndex interface {
	add(ctx context.Context, id string, vec []float32) error
	remove(id string) error
	count() int
	// query appends to out the at most k nearest entries with similarity at
	// least threshold, best first.
	query(ctx context.Context, vec []float32, k int, threshold float32, out []match) ([]match, error)
	// similarity returns the similarity of vec to id's vector, false when id is not held.
	similarity(ctx context.Context, id string, vec []float32) (float32, bool)
}

func newIndex(kind IndexKind, dim int) vectorIndex {
	if kind == IndexChromem {
		return newChromemIndex()
	}
	return newFlatIndex(dim)
}

// chromemIndex is a chromem-go collection. Its embedding function always
// fails: vectors are always passed precomputed, and a nil function would
// silently mean OpenAI over the network.
type chromemIndex struct{ coll *chromem.Collection }

func errNoEmbed(context.Context, string) ([]float32, error) {
	return nil, errors.New("semantic: chromem must not embed")
}

func newChromemIndex() *chromemIndex {
	// An in-memory DB per partition: CreateCollection cannot fail in memory
	// with a non-empty name.
	coll, err := chromem.NewDB().CreateCollection("p", nil, errNoEmbed)
	if err != nil {
		panic(fmt.Sprintf("semantic: chromem in-memory collection: %v", err))
	}
	return &chromemIndex{coll}
}

func (x *chromemIndex) add(ctx context.Context, id string, vec []float32) error {
	return x.coll.AddDocument(ctx, chromem.Document{ID: id, Embedding: vec})
}

// remove deletes by id; the filters must be nil, or chromem ignores the ids.
func (x *chromemIndex) remove(id string) error {
	return x.coll.Delete(context.Background(), nil, nil, id)
}

func (x *chromemIndex) count() int { return x.coll.Count() }

func (x *chromemIndex) similarity(ctx context.Context, id string, vec []float32) (float32, bool) {
	doc, err := x.coll.GetByID(ctx, id)
	if err != nil || len(doc.Embedding) != len(vec) {
		return 0, false
	}
	return dotF32(vec, doc.Embedding), true
}

func (x *chromemIndex) query(ctx context.Context, vec []float32, k int, threshold float32, out []match) ([]match, error) {
	k = min(k, x.coll.Count()) // chromem fails when asked for more than it holds
	if k <= 0 {
		return out, nil
	}
	res, err := x.coll.QueryEmbedding(ctx, vec, k, nil, nil)
	if err != nil {
		return out, err
	}
	for _, r := range res {
		if r.Similarity < threshold {
			break
		}
		out = append(out, match{r.ID, r.Similarity})
	}
	return out, nil
}

package main

import (
	"encoding/json"
	"fmt"
	"io"
	"sort"

	"github.com/zest-proxy/zest/semantic/internal/wordtok"
)

// source is the package's vocabulary restricted to words the tokeniser can
// produce, in the package's (frequency) order.
type source struct {
	dim   int
	words []string
	rank  []int // 0-based position in the package's full frequency-ordered list
	vecs  [][]float64
	total int // size of the package's full vocabulary
}

// skip swallows a JSON value without keeping it.
type skip struct{}

func (skip) UnmarshalJSON([]byte) error { return nil }

// parseVectors streams the package's JSON document:
//
//	{"precision":8,"l2NormIndex":100,"wordIndex":101,"size":N,"dimensions":100,
//	 "words":[...], "vectors":{"word":[v0..v99, l2norm, index], ...}, "unkVector":[...]}
func parseVectors(r io.Reader) (*source, error) {
	dec := json.NewDecoder(r)
	if err := expectDelim(dec, '{'); err != nil {
		return nil, err
	}
	src := &source{}
	normIdx, wordIdx := -1, -1
	type entry struct {
		word string
		rank int
		vec  []float64
	}
	var entries []entry
	for dec.More() {
		key, err := dec.Token()
		if err != nil {
			return nil, fmt.Errorf("json: %w", err)
		}
		switch key {
		case "dimensions":
			err = dec.Decode(&src.dim)
		case "size":
			err = dec.Decode(&src.total)
		case "l2NormIndex":
			err = dec.Decode(&normIdx)
		case "wordIndex":
			err = dec.Decode(&wordIdx)
		case "vectors":
			if src.dim <= 0 || normIdx != src.dim || wordIdx != src.dim+1 {
				return nil, fmt.Errorf("unexpected layout: dim %d, l2NormIndex %d, wordIndex %d", src.dim, normIdx, wordIdx)
			}
			if err := expectDelim(dec, '{'); err != nil {
				return nil, err
			}
			for dec.More() {
				tok, err := dec.Token()
				if err != nil {
					return nil, fmt.Errorf("json: %w", err)
				}
				word, _ := tok.(string)
				if !wordtok.IsToken(word) {
					if err := dec.Decode(&skip{}); err != nil {
						return nil, fmt.Errorf("json: vector %q: %w", word, err)
					}
					continue
				}
				var v []float64
				if err := dec.Decode(&v); err != nil {
					return nil, fmt.Errorf("json: vector %q: %w", word, err)
				}
				if len(v) != src.dim+2 {
					return nil, fmt.Errorf("vector %q has %d values, want %d", word, len(v), src.dim+2)
				}
				entries = append(entries, entry{word, int(v[wordIdx]), v[:src.dim:src.dim]})
			}
			err = expectDelim(dec, '}')
		default:
			err = dec.Decode(&skip{})
		}
		if err != nil {
			return nil, fmt.Errorf("json: %v: %w", key, err)
		}
	}
	if len(entries) == 0 {
		return nil, fmt.Errorf("no vectors found")
	}
	sort.Slice(entries, func(i, j int) bool { return entries[i].rank < entries[j].rank })
	// GloVe vocabularies are frequency ordered and the frequency weights rely
	// on it: the most frequent English word must come first.
	if entries[0].word != "the" || entries[0].rank != 0 {
		return nil, fmt.Errorf("vocabulary does not start with %q at rank 0 (got %q at %d): not frequency ordered?", "the", entries[0].word, entries[0].rank)
	}
	for _, e := range entries {
		src.words = append(src.words, e.word)
		src.rank = append(src.rank, e.rank)
		src.vecs = append(src.vecs, e.vec)
	}
	return src, nil
}

func expectDelim(dec *json.Decoder, d json.Delim) error {
	tok, err := dec.Token()
	if err != nil {
		return fmt.Errorf("json: %w", err)
	}
	if tok != d {
		return fmt.Errorf("json: got %v, want %v", tok, d)
	}
	return nil
}

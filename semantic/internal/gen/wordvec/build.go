package main

import (
	"bytes"
	"fmt"
	"math"
	"os"

	"github.com/zest-proxy/zest/semantic/internal/vecfile"
)

// zipfShift is the s in p(rank) ∝ 1/(rank+s): the Zipf–Mandelbrot shift
// that keeps the top few words from being estimated absurdly frequent.
const zipfShift = 2.7

// build cuts the vocabulary to n words, post-processes and quantises it.
func build(src *source, n, pcs int, sifA float64) *vecfile.Table {
	if n > len(src.words) {
		n = len(src.words)
	}
	dim := src.dim
	vecs := make([][]float64, n)
	for i := range n {
		vecs[i] = append([]float64(nil), src.vecs[i]...)
	}

	// Remove the common component: the mean, then the top principal components.
	mean := make([]float64, dim)
	for _, v := range vecs {
		for j, x := range v {
			mean[j] += x
		}
	}
	for j := range mean {
		mean[j] /= float64(n)
	}
	for _, v := range vecs {
		for j := range v {
			v[j] -= mean[j]
		}
	}
	for _, u := range topComponents(vecs, dim, pcs) {
		for _, v := range vecs {
			d := dot(v, u)
			for j := range v {
				v[j] -= d * u[j]
			}
		}
	}

	// Frequency weights from Zipf's law over the rank in the full vocabulary.
	var h float64
	for r := range src.total {
		h += 1 / (float64(r+1) + zipfShift)
	}
	t := &vecfile.Table{Words: src.words[:n], Dim: dim, Scales: make([]float32, n), Q: make([]int8, n*dim)}
	for i, v := range vecs {
		w := 1.0
		if sifA > 0 {
			p := 1 / ((float64(src.rank[i]+1) + zipfShift) * h)
			w = sifA / (sifA + p)
		}
		var maxAbs float64
		for _, x := range v {
			maxAbs = math.Max(maxAbs, math.Abs(x))
		}
		if maxAbs == 0 {
			continue
		}
		scale := maxAbs / 127
		for j, x := range v {
			t.Q[i*dim+j] = int8(math.Round(x / scale))
		}
		t.Scales[i] = float32(scale * w)
	}
	return t
}

// topComponents returns the k leading eigenvectors of the (already centred)
// vectors' covariance, by power iteration with deflation. Deterministic: the
// start vector is fixed.
func topComponents(vecs [][]float64, dim, k int) [][]float64 {
	cov := make([][]float64, dim)
	for i := range cov {
		cov[i] = make([]float64, dim)
	}
	for _, v := range vecs {
		for i, a := range v {
			row := cov[i]
			for j, b := range v {
				row[j] += a * b
			}
		}
	}
	var out [][]float64
	for range k {
		u := make([]float64, dim)
		for j := range u {
			u[j] = 1 / math.Sqrt(float64(dim)) * float64(1+j%3)
		}
		var lambda float64
		for range 500 {
			next := make([]float64, dim)
			for i := range cov {
				next[i] = dot(cov[i], u)
			}
			lambda = math.Sqrt(dot(next, next))
			for j := range next {
				next[j] /= lambda
			}
			u = next
		}
		out = append(out, u)
		for i := range cov { // deflate
			for j := range cov[i] {
				cov[i][j] -= lambda * u[i] * u[j]
			}
		}
	}
	return out
}

func dot(a, b []float64) float64 {
	var s float64
	for i := range a {
		s += a[i] * b[i]
	}
	return s
}

func writeTable(path string, t *vecfile.Table) error {
	var buf bytes.Buffer
	if err := vecfile.Encode(&buf, t); err != nil {
		return err
	}
	if err := os.WriteFile(path, buf.Bytes(), 0o644); err != nil {
		return fmt.Errorf("write %s: %w", path, err)
	}
	return nil
}

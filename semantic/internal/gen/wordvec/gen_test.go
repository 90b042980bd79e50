package main

import (
	"math"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
)

func TestParseVectors(t *testing.T) {
	const doc = `{"precision":8,"l2NormIndex":2,"wordIndex":3,"size":5,"dimensions":2,
	"words":["the",",","Cat","dog","e-mail"],
	"vectors":{"dog":[0,1,1,3],",":[1,1,1.4,1],"the":[1,0,1,0],"Cat":[2,2,2.8,2],"e-mail":[3,3,4.2,4]},
	"unkVector":[0,0,0,-1]}`
	src, err := parseVectors(strings.NewReader(doc))
	if err != nil {
		t.Fatal(err)
	}
	// Only tokeniser-producible words survive, in frequency order.
	if !slices.Equal(src.words, []string{"the", "dog"}) || !slices.Equal(src.rank, []int{0, 3}) {
		t.Errorf("words %v ranks %v", src.words, src.rank)
	}
	if src.total != 5 || src.dim != 2 || !slices.Equal(src.vecs[1], []float64{0, 1}) {
		t.Errorf("parsed %+v", src)
	}
	if _, err := parseVectors(strings.NewReader(`{"dimensions":2,"l2NormIndex":5,"wordIndex":6,"vectors":{}}`)); err == nil {
		t.Error("accepted an unexpected layout")
	}
}

func TestBuildRemovesCommonComponent(t *testing.T) {
	// Every vector shares a large offset along (1,1,0): after processing, no
	// word keeps it, so unrelated words stop looking alike.
	src := &source{dim: 3, total: 1000}
	for i := range 40 {
		a, b := math.Cos(float64(i)), math.Sin(float64(i))
		src.words = append(src.words, "w"+string(rune('a'+i%26))+string(rune('a'+i/26)))
		src.rank = append(src.rank, 100+i)
		src.vecs = append(src.vecs, []float64{5 + a, 5 + b, float64(i%5) - 2})
	}
	tbl := build(src, 30, 1, 1e-3)
	if len(tbl.Words) != 30 || len(tbl.Q) != 90 {
		t.Fatalf("kept %d words, %d values", len(tbl.Words), len(tbl.Q))
	}
	var mean [3]float64
	for i := range 30 {
		for j := range 3 {
			mean[j] += float64(tbl.Scales[i]) * float64(tbl.Q[i*3+j])
		}
	}
	if math.Abs(mean[0]+mean[1]) > 1 {
		t.Errorf("common direction survives: summed vector %v", mean)
	}
}

func TestVerifyRejectsOtherTarball(t *testing.T) {
	path := filepath.Join(t.TempDir(), "x.tgz")
	if err := os.WriteFile(path, []byte("not the package"), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := verify(path); err == nil || !strings.Contains(err.Error(), "integrity mismatch") {
		t.Errorf("verify = %v, want an integrity mismatch", err)
	}
}

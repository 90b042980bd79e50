package vecfile

import (
	"bytes"
	"compress/gzip"
	"reflect"
	"testing"
)

func TestRoundTrip(t *testing.T) {
	in := &Table{
		Words:  []string{"the", "café", "o'clock"},
		Dim:    2,
		Scales: []float32{0.5, 1.25, 3},
		Q:      []int8{-128, 127, 0, 1, -1, 42},
	}
	var a, b bytes.Buffer
	if err := Encode(&a, in); err != nil {
		t.Fatal(err)
	}
	if err := Encode(&b, in); err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(a.Bytes(), b.Bytes()) {
		t.Error("Encode is not deterministic")
	}
	out, err := Decode(&a)
	if err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(in, out) {
		t.Errorf("round trip: got %+v, want %+v", out, in)
	}
}

func TestDecodeRejects(t *testing.T) {
	var good bytes.Buffer
	if err := Encode(&good, &Table{Words: []string{"a"}, Dim: 1, Scales: []float32{1}, Q: []int8{1}}); err != nil {
		t.Fatal(err)
	}
	gz := func(raw string) []byte {
		var b bytes.Buffer
		w := gzip.NewWriter(&b)
		w.Write([]byte(raw))
		w.Close()
		return b.Bytes()
	}
	tests := map[string][]byte{
		"not gzip":    []byte("ZWV1"),
		"bad magic":   gz("XXXX\x01\x00\x00\x00\x01\x00\x00\x00"),
		"huge header": gz("ZWV1\xff\xff\xff\xff\x01\x00\x00\x00"),
		"truncated":   gz("ZWV1\x02\x00\x00\x00\x01\x00\x00\x00\x01a"),
	}
	for name, data := range tests {
		t.Run(name, func(t *testing.T) {
			if _, err := Decode(bytes.NewReader(data)); err == nil {
				t.Error("Decode accepted corrupt input")
			}
		})
	}
	if err := Encode(&good, &Table{Words: []string{"a"}, Dim: 2, Scales: []float32{1}, Q: []int8{1}}); err == nil {
		t.Error("Encode accepted an inconsistent table")
	}
}

func FuzzDecode(f *testing.F) {
	var good bytes.Buffer
	Encode(&good, &Table{Words: []string{"a", "bc"}, Dim: 2, Scales: []float32{1, 2}, Q: []int8{1, 2, 3, 4}})
	f.Add(good.Bytes())
	f.Add([]byte("ZWV1"))
	f.Fuzz(func(t *testing.T, data []byte) {
		tbl, err := Decode(bytes.NewReader(data))
		if err != nil {
			return
		}
		if len(tbl.Scales) != len(tbl.Words) || len(tbl.Q) != len(tbl.Words)*tbl.Dim {
			t.Fatalf("Decode returned an inconsistent table: %d words, %d scales, %d values, dim %d",
				len(tbl.Words), len(tbl.Scales), len(tbl.Q), tbl.Dim)
		}
	})
}

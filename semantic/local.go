package semantic

import (
	"bytes"
	"context"
	_ "embed"
	"fmt"
	"sync"

	"github.com/zest-proxy/zest/internal/strtab"
	"github.com/zest-proxy/zest/semantic/internal/vecfile"
	"github.com/zest-proxy/zest/semantic/internal/wordtok"
)

//go:generate go run ./internal/gen/wordvec -out local

// wordvecData is the generated word-vector table (see local/NOTICE.md for
// its origin and licences).
//
//go:embed local/wordvec.bin.gz
var wordvecData []byte

// LocalDim is the dimension of the local embedder's vectors.
const LocalDim = 100

// LocalThreshold is the tuned similarity floor for the local embedder. Its averaged static
// word vectors only retrieve candidates (paraphrases score ~0.7, near-misses ~1.0), so the floor
// is low and the verifier decides; see quality_test.go for the precision and recall it gives.
const LocalThreshold = 0.5

// Local is the offline embedder shipped inside the binary: the frequency
// weighted sum of GloVe word vectors (50k most frequent English words, common
// component removed, int8 quantised), L2-normalised. Words outside its
// vocabulary are skipped; a text with no known word embeds to the zero vector.
// It is deterministic, needs no network, and is safe for concurrent use.
//
// Static word vectors rank paraphrases poorly against near-misses; use the
// embedding to retrieve candidates and a Verifier to decide.
type Local struct {
	once  sync.Once
	err   error
	index *strtab.Table  // the vocabulary: word → row of tbl
	tbl   *vecfile.Table // its Words are dropped once index holds them
}

// NewLocal returns the local embedder. The table is decoded lazily, once, on
// first use (about 5 MB compressed, 5 MB in memory); NewLocal itself is cheap
// and never fails today, but callers should handle the error.
func NewLocal() (*Local, error) {
	return &Local{}, nil
}

func (l *Local) load() error {
	l.once.Do(func() {
		tbl, err := vecfile.Decode(bytes.NewReader(wordvecData))
		if err != nil {
			l.err = fmt.Errorf("semantic: local embedder: %w", err)
			return
		}
		if tbl.Dim != LocalDim {
			l.err = fmt.Errorf("semantic: local embedder: table has dim %d, want %d", tbl.Dim, LocalDim)
			return
		}
		index, err := strtab.New(tbl.Words)
		if err != nil {
			l.err = fmt.Errorf("semantic: local embedder: %w", err)
			return
		}
		tbl.Words = nil // one blob in index instead of 50k strings for the collector to mark
		l.index, l.tbl = index, tbl
	})
	return l.err
}

// Dim returns LocalDim.
func (l *Local) Dim() int { return LocalDim }

// Known reports whether word, a single lowercase token as the embedder
// tokenises text, is in the vocabulary. It returns false if the table
// cannot be decoded.
func (l *Local) Known(word string) bool {
	if l.load() != nil {
		return false
	}
	_, ok := l.index.ID(word)
	return ok
}

// Tokens splits text into the tokens the local embedder looks up: lowercase
// runs of letters and digits, with English clitics split off ("don't" →
// "do", "n't").
func Tokens(text string) []string { return wordtok.Split(text) }

// Embed returns one vector per text. It only fails if the embedded table is
// corrupt or ctx is already done.
func (l *Local) Embed(ctx context.Context, texts []string) ([][]float32, error) {
	if err := ctx.Err(); err != nil {
		return nil, fmt.Errorf("semantic: local embed: %w", err)
	}
	if err := l.load(); err != nil {
		return nil, err
	}
	out := make([][]float32, len(texts))
	flat := make([]float32, len(texts)*LocalDim)
	for i, text := range texts {
		v := flat[i*LocalDim : (i+1)*LocalDim : (i+1)*LocalDim]
		l.embedOne(text, v)
		out[i] = v
	}
	return out, nil
}

// addScaledGeneric adds s * float32(q[j]) to v[j] for every j of q, which is no longer than v.
func addScaledGeneric(v []float32, q []int8, s float32) {
	v = v[:len(q)]
	for j, x := range q {
		v[j] += s * float32(x)
	}
}

func (l *Local) embedOne(text string, v []float32) {
	t := l.tbl
	wordtok.Each(text, func(tok string) {
		i, ok := l.index.ID(tok)
		if !ok {
			return
		}
		addScaled(v, t.Q[int(i)*LocalDim:int(i+1)*LocalDim], t.Scales[i])
	})
	normalize(v)
}

// Load decodes the embedded table now instead of on first use. It is
// idempotent and safe for concurrent use; New calls it.
func (l *Local) Load() error { return l.load() }

package mock

import (
	"encoding/base64"
	"encoding/binary"
	"encoding/json"
	"hash/fnv"
	"io"
	"math"
	"net/http"
	"strconv"
	"strings"
	"unicode"
)

type embeddingsRequest struct {
	Model          string          `json:"model"`
	Input          json.RawMessage `json:"input"`
	Dimensions     int             `json:"dimensions"`
	EncodingFormat string          `json:"encoding_format"`
}

// Embed returns the mock's deterministic unit vector of length dim for text:
// a hashed bag of lower-cased words, so equal texts get equal vectors and texts
// that share words get a positive cosine similarity. dim <= 0 means 64.
func Embed(text string, dim int) []float32 {
	if dim <= 0 {
		dim = 64
	}
	v := make([]float32, dim)
	words := strings.FieldsFunc(strings.ToLower(text), func(r rune) bool {
		return !unicode.IsLetter(r) && !unicode.IsDigit(r)
	})
	for _, w := range words {
		h := fnv.New64a()
		_, _ = io.WriteString(h, w)
		x := h.Sum64()
		for k := range 4 { // each word touches 4 coordinates
			y := splitmix(x + uint64(k))
			sign := float32(1)
			if y&1 == 1 {
				sign = -1
			}
			v[(y>>1)%uint64(dim)] += sign
		}
	}
	var norm float64
	for _, f := range v {
		norm += float64(f) * float64(f)
	}
	if norm == 0 {
		v[0] = 1
		return v
	}
	inv := float32(1 / math.Sqrt(norm))
	for i := range v {
		v[i] *= inv
	}
	return v
}

// inputs decodes the embeddings `input`: a string or an array of strings.
func inputs(raw json.RawMessage) ([]string, bool) {
	var one string
	if json.Unmarshal(raw, &one) == nil {
		return []string{one}, true
	}
	var many []string
	if json.Unmarshal(raw, &many) == nil && len(many) > 0 {
		return many, true
	}
	return nil, false
}

func (m *Mock) serveEmbeddings(w http.ResponseWriter, r *http.Request) {
	var req embeddingsRequest
	body, err := io.ReadAll(io.LimitReader(r.Body, 8<<20))
	if err == nil {
		err = json.Unmarshal(body, &req)
	}
	texts, ok := inputs(req.Input)
	if err != nil || !ok {
		m.badRequests.Add(1)
		writeError(w, http.StatusBadRequest, "'input' must be a string or an array of strings", "invalid_request_error", "invalid_input")
		return
	}
	if !sleep(r, headerDuration(r, "X-Mock-Latency", m.opts.Latency)) {
		return
	}
	m.embeddings.Add(1)
	dim := m.opts.EmbeddingDim
	if req.Dimensions > 0 {
		dim = req.Dimensions
	}
	data := make([]map[string]any, len(texts))
	tokens := 0
	for i, t := range texts {
		v := Embed(t, dim)
		tokens += (len(t) + 3) / 4
		var e any = v
		if req.EncodingFormat == "base64" {
			buf := make([]byte, 4*len(v))
			for j, f := range v {
				binary.LittleEndian.PutUint32(buf[4*j:], math.Float32bits(f))
			}
			e = base64.StdEncoding.EncodeToString(buf)
		}
		data[i] = map[string]any{"object": "embedding", "index": i, "embedding": e}
	}
	model := req.Model
	if model == "" {
		model = "text-embedding-3-small"
	}
	out, _ := json.Marshal(map[string]any{
		"object": "list", "data": data, "model": model,
		"usage": map[string]int{"prompt_tokens": tokens, "total_tokens": tokens},
	})
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Content-Length", strconv.Itoa(len(out)))
	_, _ = w.Write(out)
}

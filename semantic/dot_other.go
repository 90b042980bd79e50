//go:build !amd64 || purego

package semantic

// dotF32 is the dot product of equally long a and b.
func dotF32(a, b []float32) float32 { return dotGeneric(a, b) }

// dotBlock writes to out[i] dotF32(q, vecs[i*len(q):(i+1)*len(q)]), for the len(out)
// vectors vecs holds.
func dotBlock(q, vecs []float32, out []float32) { dotBlockGeneric(q, vecs, out) }

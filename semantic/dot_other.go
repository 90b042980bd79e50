//go:build !amd64 || purego

package semantic

// dotF32 is the dot product of equally long a and b.
func dotF32(a, b []float32) float32 { return dotGeneric(a, b) }

// dotBlock writes to out[i] dotF32(q, vecs[i*len(q):(i+1)*len(q)]), for the len(out)
// vectors vecs holds.
func dotBlock(q, vecs []float32, out []float32) { dotBlockGeneric(q, vecs, out) }

// addScaled adds s * float32(q[j]) to v[j] for every j of q, which is no longer than v.
func addScaled(v []float32, q []int8, s float32) { addScaledGeneric(v, q, s) }

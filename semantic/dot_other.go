//go:build !amd64 || purego

package semantic

// dotF32 is the dot product of equally long a and b.
func dotF32(a, b []float32) float32 { return dotGeneric(a, b) }

package verify

import "testing"

func TestZZMiss(t *testing.T) {
	v := newVerifier(t)
	for _, p := range loadPairs(t) {
		ok, why := v.Explain(p.A, p.B)
		if p.Same && !ok {
			t.Logf("%-10s %s\n    a: %s\n    b: %s", p.Kind, why, p.A, p.B)
		}
	}
}

package verify

import (
	"os"
	"strings"
	"testing"
)

func TestZZLex(t *testing.T) {
	v := newVerifier(t)
	for _, pr := range strings.Split(os.Getenv("ZZ"), ",") {
		w := strings.Fields(pr)
		if len(w) != 2 {
			continue
		}
		x := cword{text: w[0], lemmas: v.lx.lemmas(nil, w[0])}
		y := cword{text: w[1], lemmas: v.lx.lemmas(nil, w[1])}
		best := 0
		for r := 1; r <= 255; r++ {
			v.maxRank = uint32(r)
			if v.match(x, y) {
				best = r
				break
			}
		}
		t.Logf("%s/%s known=%v/%v rank=%d", w[0], w[1], x.lemmas != nil, y.lemmas != nil, best)
	}
}

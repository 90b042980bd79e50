package proxy

import (
	"strconv"
	"testing"
)

func TestInterner(t *testing.T) {
	var in interner
	for _, tc := range []struct{ raw, want string }{
		{`"gpt-4o-mini"`, "gpt-4o-mini"},
		{`"gpt-4o-mini"`, "gpt-4o-mini"},
		{`"caf\u00e9"`, "café"},
		{`""`, ""},
		{`null`, ""},
		{`12`, ""},
	} {
		if got := in.stringOf([]byte(tc.raw)); got != tc.want {
			t.Errorf("stringOf(%s) = %q, want %q", tc.raw, got, tc.want)
		}
	}
	raw := []byte(`"gpt-4o-mini"`)
	if n := testing.AllocsPerRun(100, func() { in.stringOf(raw) }); n != 0 {
		t.Errorf("reading an interned name allocates %v times", n)
	}
	ns := []byte("k:0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef")
	if a, b := in.of(ns), in.of(ns); a != string(ns) || b != a {
		t.Errorf("of(%s) = %q, then %q", ns, a, b)
	}
	if n := testing.AllocsPerRun(100, func() { in.of(ns) }); n != 0 {
		t.Errorf("reading an interned namespace allocates %v times", n)
	}
	for i := range 2 * maxInterned {
		in.stringOf([]byte(`"model-` + strconv.Itoa(i) + `"`))
	}
	if n := len(*in.table.Load()); n != maxInterned {
		t.Errorf("the table holds %d names, want the bound %d", n, maxInterned)
	}
	if got := in.stringOf([]byte(`"beyond"`)); got != "beyond" {
		t.Errorf("past the bound: %q", got)
	}
}

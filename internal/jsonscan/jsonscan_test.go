package jsonscan

import (
	"encoding/json"
	"testing"
)

// FuzzJSON checks the reader against encoding/json.
func FuzzJSON(f *testing.F) {
	for _, s := range []string{`{"a":[1,2.5e-3,true,false,null,"x\u00e9\n"]}`, `{"a":}`, `[01]`, `"\x"`, `{"a":1,}`, `-`, `1.`, `{"a" 1}`, "\"\x01\"", ` [ ] `, `{"a":1}}`, `{"a":1`, `[1,]`, `[1 2]`, `{,"a":1}`} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, in []byte) {
		_, err := CheckValue(in)
		if got, want := err == nil, json.Valid(in); got != want {
			t.Fatalf("CheckValue(%q) valid = %v, encoding/json says %v (%v)", in, got, want, err)
		}
		// Iterating an object's members or an array's elements validates it
		// as strictly as encoding/json (the assembler relies on this).
		v := in[SkipWS(in, 0):]
		for len(v) > 0 && IsWS(v[len(v)-1]) {
			v = v[:len(v)-1]
		}
		if len(v) > 0 && v[0] == '{' {
			m := NewMembers(v)
			for {
				if _, _, ok := m.Next(); !ok {
					break
				}
			}
			if (m.Err() == nil) != json.Valid(in) {
				t.Fatalf("members(%q) err = %v, encoding/json valid = %v", in, m.Err(), json.Valid(in))
			}
		}
		if len(v) > 0 && v[0] == '[' {
			e := NewElems(v)
			for {
				if _, ok := e.Next(); !ok {
					break
				}
			}
			if (e.Err() == nil) != json.Valid(in) {
				t.Fatalf("elems(%q) err = %v, encoding/json valid = %v", in, e.Err(), json.Valid(in))
			}
		}
	})
}

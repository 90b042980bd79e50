package jsonscan

import (
	"bytes"
	"encoding/json"
	"errors"
	"strings"
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
		// Walking a container, its items skipped by the walker's callback, ends where skipping
		// the container ends, with an error exactly when skipping fails; the keys handed out are
		// the raw keys.
		if len(v) > 0 && (v[0] == '{' || v[0] == '[') {
			wantEnd, wantErr := SkipValue(v, 0, 0)
			var keys [][]byte
			skip := func(at int) (int, error) { return SkipValue(v, at, 1) }
			var end int
			var err error
			if v[0] == '{' {
				end, err = WalkObject(v, 0, 0, func(k []byte, at int) (int, error) {
					keys = append(keys, k)
					return skip(at)
				})
			} else {
				end, err = WalkArray(v, 0, 0, skip)
			}
			if (err == nil) != (wantErr == nil) || (err == nil && end != wantEnd) {
				t.Fatalf("walk(%q) = %d, %v; SkipValue = %d, %v", v, end, err, wantEnd, wantErr)
			}
			if v[0] == '{' && err == nil {
				m := NewMembers(v[:end])
				for i := 0; ; i++ {
					k, _, ok := m.Next()
					if !ok {
						break
					}
					if raw := keys[i]; !bytes.Contains(raw, []byte{'\\'}) && !bytes.Equal(raw, k) {
						t.Fatalf("walk(%q): key %d %q, Members gives %q", v, i, raw, k)
					}
				}
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

// TestWalk: the walkers hand out raw keys and value positions, stop at the callback's error,
// and refuse what is not their container.
func TestWalk(t *testing.T) {
	in := []byte(`{"a":1, "b\u0063" : [true, {"x":null}] ,"c":"s"}`)
	var got []string
	end, err := WalkObject(in, 0, 0, func(k []byte, at int) (int, error) {
		e, err := SkipValue(in, at, 1)
		got = append(got, string(k)+"="+string(in[at:e]))
		return e, err
	})
	want := []string{`a=1`, `b\u0063=[true, {"x":null}]`, `c="s"`}
	if err != nil || end != len(in) || strings.Join(got, "|") != strings.Join(want, "|") {
		t.Fatalf("WalkObject = %d, %v, %q; want %d, nil, %q", end, err, got, len(in), want)
	}

	stop := errors.New("stop")
	arr := []byte(`[1,2,3]`)
	n := 0
	if _, err := WalkArray(arr, 0, 0, func(at int) (int, error) {
		if n++; n == 2 {
			return at, stop
		}
		return SkipValue(arr, at, 1)
	}); !errors.Is(err, stop) || n != 2 {
		t.Fatalf("WalkArray after the callback's error: %v after %d elements, want stop after 2", err, n)
	}

	skip := func(at int) (int, error) { return SkipValue(arr, at, 1) }
	for _, c := range []struct {
		name string
		err  error
	}{
		{"object", func() error { _, err := WalkObject(arr, 0, 0, nil); return err }()},
		{"array", func() error { _, err := WalkArray([]byte(`{}`), 0, 0, skip); return err }()},
		{"depth", func() error { _, err := WalkArray(arr, 0, maxDepth, skip); return err }()},
		{"end", func() error { _, err := WalkArray(arr, len(arr), 0, skip); return err }()},
	} {
		if !errors.Is(c.err, ErrMalformed) {
			t.Errorf("%s: err = %v, want ErrMalformed", c.name, c.err)
		}
	}
}

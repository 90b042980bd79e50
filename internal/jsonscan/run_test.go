package jsonscan

import (
	"strings"
	"testing"
)

// stringRunRef is StringRun byte by byte: its definition.
func stringRunRef(b []byte, i int) int {
	for ; i < len(b); i++ {
		if c := b[i]; c < 0x20 || c == '"' || c == '\\' {
			return i
		}
	}
	return len(b)
}

func TestStringRun(t *testing.T) {
	long := strings.Repeat("plain text, é ünïcode ", 4)
	for _, s := range []string{"", `"`, `abc"`, `abcdefgh"`, `abcdefghi\n`, "abcdefg\x1f", "\x7f\x80\xff\x20\x21\x5b\x5d\x5c",
		long, long + `"`, long + "\x00", long + `\u0041` + long, "\xa2\xdc\x9f\xa0\x5c", strings.Repeat("\x80", 17) + `"`} {
		for i := 0; i <= len(s); i++ {
			if got, want := StringRun([]byte(s), i), stringRunRef([]byte(s), i); got != want {
				t.Errorf("StringRun(%q, %d) = %d, want %d", s, i, got, want)
			}
		}
	}
}

// FuzzStringRun holds StringRun to its byte-by-byte definition at every start offset.
func FuzzStringRun(f *testing.F) {
	for _, s := range []string{"hello world, a long enough run\"", "\x1f\x20\x21\x22\x5b\x5c\x5d", "\xff\xfe\x00abc"} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		for i := 0; i <= len(b); i++ {
			if got, want := StringRun(b, i), stringRunRef(b, i); got != want {
				t.Fatalf("StringRun(%q, %d) = %d, want %d", b, i, got, want)
			}
		}
	})
}

func BenchmarkStringRun(b *testing.B) {
	s := []byte(strings.Repeat("A caching reverse proxy keeps answers. ", 16) + `"`)
	b.SetBytes(int64(len(s)))
	for b.Loop() {
		if StringRun(s, 0) != len(s)-1 {
			b.Fatal("wrong end")
		}
	}
}

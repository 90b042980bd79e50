package replay

import (
	"errors"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"sync"
	"testing"
	"time"
)

const completion = `{"id":"c1","object":"chat.completion","choices":[{"index":0,"message":{"role":"assistant","content":"hi"},"finish_reason":"stop"}]}`

func rec(key string, stream bool) Record {
	r := Record{Key: key, Namespace: "k:abc", Model: "m", Request: []byte(`{"messages":[]}`),
		Completion: []byte(completion), Stream: stream, RecordedAt: time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC), TTL: 3600}
	r.SetTiming(Timing{TTFB: 5 * time.Millisecond, Total: 40 * time.Millisecond,
		Events: []time.Duration{10 * time.Millisecond, 20 * time.Millisecond, 40 * time.Millisecond}})
	return r
}

func TestWriteReadAcrossRuns(t *testing.T) {
	path := filepath.Join(t.TempDir(), "rec.jsonl")
	for run := range 2 {
		w, err := Create(path)
		if err != nil {
			t.Fatal(err)
		}
		var wg sync.WaitGroup
		for i := range 10 {
			wg.Go(func() {
				r := rec(string(rune('a'+run))+string(rune('0'+i)), i%2 == 0)
				if err := w.Record(&r); err != nil {
					t.Error(err)
				}
			})
		}
		wg.Wait()
		if err := w.Close(); err != nil {
			t.Fatal(err)
		}
	}
	recs, bad, err := ReadFile(path)
	if err != nil || len(bad) > 0 {
		t.Fatalf("read: %v %v", err, bad)
	}
	if len(recs) != 20 {
		t.Fatalf("got %d records, want 20", len(recs))
	}
	want := rec("x", true)
	got := recs[0]
	got.Key, got.Stream = "x", true
	if !reflect.DeepEqual(got.Gaps, want.Gaps) || got.TTFT != 10 || got.TTFB != 5 || got.Total != 40 ||
		!got.RecordedAt.Equal(want.RecordedAt) || string(got.Completion) != completion {
		t.Errorf("round trip: got %+v", got)
	}
}

func TestReadReportsBadLines(t *testing.T) {
	good, _ := os.ReadFile(writeOne(t))
	cut := good[:len(good)/2]
	tests := []struct {
		name    string
		text    string
		n       int
		badLine []int
	}{
		{"truncated last line", string(good) + string(good) + string(cut), 2, []int{3}},
		{"garbage in the middle", string(good) + "{nope\n" + string(good), 2, []int{2}},
		{"no key", string(good) + `{"completion":{}}` + "\n", 1, []int{2}},
		{"blank lines", "\n" + string(good) + "\n\n", 1, nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			recs, bad, err := Read(strings.NewReader(tt.text))
			if err != nil {
				t.Fatal(err)
			}
			if len(recs) != tt.n {
				t.Errorf("records = %d, want %d", len(recs), tt.n)
			}
			var lines []int
			for _, b := range bad {
				lines = append(lines, b.Line)
			}
			if !reflect.DeepEqual(lines, tt.badLine) {
				t.Errorf("bad lines = %v, want %v (%v)", lines, tt.badLine, bad)
			}
		})
	}
}

// A writer after a crash that cut the last line starts a new line: the old cut line stays
// bad, the new record reads.
func TestCreateAfterCutLine(t *testing.T) {
	path := writeOne(t)
	b, _ := os.ReadFile(path)
	os.WriteFile(path, append(b, b[:20]...), 0o600)
	w, err := Create(path)
	if err != nil {
		t.Fatal(err)
	}
	r := rec("new", false)
	w.Record(&r)
	w.Close()
	recs, bad, err := ReadFile(path)
	if err != nil || len(recs) != 2 || len(bad) != 1 || bad[0].Line != 2 {
		t.Fatalf("recs %d bad %v err %v", len(recs), bad, err)
	}
}

func writeOne(t *testing.T) string {
	t.Helper()
	path := filepath.Join(t.TempDir(), "one.jsonl")
	w, err := Create(path)
	if err != nil {
		t.Fatal(err)
	}
	r := rec("k1", true)
	if err := w.Record(&r); err != nil {
		t.Fatal(err)
	}
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	return path
}

func TestWriterClosed(t *testing.T) {
	w, err := Create(filepath.Join(t.TempDir(), "c.jsonl"))
	if err != nil {
		t.Fatal(err)
	}
	w.Close()
	r := rec("k", false)
	if err := w.Record(&r); err == nil {
		t.Error("Record after Close succeeded")
	}
	if err := w.Close(); err != nil {
		t.Errorf("second Close: %v", err)
	}
	if _, _, err := ReadFile(filepath.Join(t.TempDir(), "missing")); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("missing file: %v", err)
	}
}

func ms(v ...float64) []time.Duration {
	out := make([]time.Duration, len(v))
	for i, x := range v {
		out[i] = time.Duration(x * float64(time.Millisecond))
	}
	return out
}

func TestSchedule(t *testing.T) {
	stream := rec("s", true) // events at 10, 20, 40 ms; headers at 5 ms
	plain := Record{Total: 30, TTFB: 30, TTFT: 1}
	tests := []struct {
		name   string
		r      Record
		n      int
		speed  float64
		head   time.Duration
		events []time.Duration
	}{
		{"same count", stream, 3, 1, ms(5)[0], ms(10, 20, 40)},
		{"more events interpolate", stream, 5, 1, ms(5)[0], ms(10, 15, 20, 30, 40)},
		{"fewer events", stream, 2, 1, ms(5)[0], ms(10, 40)},
		{"one event at the end", stream, 1, 1, ms(5)[0], ms(40)},
		{"speed 2 halves", stream, 3, 2, ms(2.5)[0], ms(5, 10, 20)},
		{"speed 0 is instant", stream, 3, 0, 0, ms(0, 0, 0)},
		{"not streamed: all at the end", plain, 3, 1, ms(30)[0], ms(30, 30, 30)},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			head, ev := tt.r.Schedule(tt.n, tt.speed)
			if head != tt.head || !reflect.DeepEqual(ev, tt.events) {
				t.Errorf("Schedule(%d, %v) = %v %v, want %v %v", tt.n, tt.speed, head, ev, tt.head, tt.events)
			}
		})
	}
}

func TestBook(t *testing.T) {
	a1, a2, b := rec("a", false), rec("a", true), rec("b", false)
	a2.Model = "second"
	bk := NewBook([]Record{a1, b, a2})
	if bk.Len() != 2 {
		t.Fatalf("Len = %d", bk.Len())
	}
	if r, ok := bk.Lookup("a"); !ok || r.Model != "second" {
		t.Errorf("last record of a key should win: %+v", r)
	}
	if r := bk.Pick(7, true); r == nil || r.Key != "a" {
		t.Errorf("Pick stream = %+v, want the one streamed record", r)
	}
	if r := bk.Pick(1, false); r == nil {
		t.Error("Pick nil")
	}
	if NewBook(nil).Pick(1, true) != nil {
		t.Error("empty book picked something")
	}
}

// TestWriteFileAtomic: WriteFile replaces the file whole. While it writes, the old file is
// still there unchanged; a record that cannot be encoded leaves the old file and no
// temporary one behind.
func TestWriteFileAtomic(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "snap.jsonl")
	old := []byte(`{"key":"old","completion":{}}` + "\n")
	if err := os.WriteFile(path, old, 0o600); err != nil {
		t.Fatal(err)
	}
	unchanged := func(when string) {
		t.Helper()
		if b, err := os.ReadFile(path); err != nil || string(b) != string(old) {
			t.Errorf("%s: the file reads %q, %v; want the old one whole", when, b, err)
		}
	}
	seq := func(recs ...Record) func(func(*Record) bool) {
		return func(yield func(*Record) bool) {
			for i := range recs {
				if !yield(&recs[i]) {
					return
				}
				unchanged("mid-write")
			}
		}
	}
	bad := rec("bad", false)
	bad.Completion = []byte(`{"cut`)
	if _, err := WriteFile(path, seq(rec("a", false), bad)); err == nil {
		t.Fatal("a record with a broken completion was written")
	}
	unchanged("after a failed write")
	if left, _ := filepath.Glob(filepath.Join(dir, ".snap.jsonl.tmp-*")); len(left) > 0 {
		t.Errorf("temporary files left: %v", left)
	}

	n, err := WriteFile(path, seq(rec("a", false), rec("b", true)))
	if err != nil || n != 2 {
		t.Fatalf("WriteFile = %d, %v", n, err)
	}
	recs, badLines, err := ReadFile(path)
	if err != nil || len(badLines) > 0 || len(recs) != 2 || recs[0].Key != "a" || recs[1].Key != "b" || !recs[1].Stream {
		t.Fatalf("read back %+v %v %v", recs, badLines, err)
	}
	if st, _ := os.Stat(path); st.Mode().Perm() != 0o600 {
		t.Errorf("mode %v, want 0600", st.Mode().Perm())
	}
	if entries, _ := os.ReadDir(dir); len(entries) != 1 {
		t.Errorf("directory holds %d files, want the snapshot alone", len(entries))
	}
	if _, err := WriteFile(filepath.Join(dir, "missing", "snap.jsonl"), seq()); err == nil {
		t.Error("no error for a directory that does not exist")
	}
}

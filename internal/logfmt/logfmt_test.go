package logfmt

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"log/slog"
	"math"
	"math/rand/v2"
	"strings"
	"sync"
	"testing"
	"time"
)

var (
	accessTime = time.Date(2026, 12, 6, 20, 18, 1, 123456789, time.UTC)
	// fixedZone is a non-UTC zone; zeroOffsetZone has offset 0 but is not UTC.
	fixedZone      = time.FixedZone("X", -(5*3600 + 30*60))
	zeroOffsetZone = time.FixedZone("Z0", 0)
)

// accessRecord returns the access-log record proxy/observe.go writes for a cache hit.
func accessRecord() slog.Record {
	r := slog.NewRecord(accessTime, slog.LevelInfo, "request", 0)
	r.AddAttrs(
		slog.String("method", "POST"), slog.String("path", "/v1/chat/completions"),
		slog.Int("status", 200), slog.Duration("duration", 41200*time.Nanosecond),
		slog.String("cache", "HIT"), slog.String("model", "gpt-4o-mini"), slog.Bool("stream", false),
		slog.String("layer", "exact"), slog.String("entry", "3f2a9c01b2d4"), slog.String("tenant", "9f86d081"))
	return r
}

// rec builds a record at accessTime and LevelInfo with the given attributes.
func rec(msg string, attrs ...slog.Attr) slog.Record {
	r := slog.NewRecord(accessTime, slog.LevelInfo, msg, 0)
	r.AddAttrs(attrs...)
	return r
}

// atTime returns r with its time replaced by t.
func atTime(r slog.Record, t time.Time) slog.Record {
	r2 := slog.NewRecord(t, r.Level, r.Message, r.PC)
	r.Attrs(func(a slog.Attr) bool { r2.AddAttrs(a); return true })
	return r2
}

// atLevel returns r with its level replaced by l.
func atLevel(r slog.Record, l slog.Level) slog.Record {
	r2 := slog.NewRecord(r.Time, l, r.Message, r.PC)
	r.Attrs(func(a slog.Attr) bool { r2.AddAttrs(a); return true })
	return r2
}

// fastRecords are records the fast path formats (with default options).
func fastRecords() map[string]slog.Record {
	tm := func(y int, mo time.Month, d, h, mi, s, ns int, loc *time.Location) time.Time {
		return time.Date(y, mo, d, h, mi, s, ns, loc)
	}
	m := map[string]slog.Record{
		"access":         accessRecord(),
		"no attrs":       rec("hello"),
		"empty msg":      rec(""),
		"msg with space": rec("hello world", slog.Int("n", 1)),
		"every kind": rec("kinds",
			slog.String("s", "str"), slog.Int64("i", -42), slog.Int("i0", 0), slog.Uint64("u", math.MaxUint64),
			slog.Bool("t", true), slog.Bool("f", false), slog.Float64("x", 3.25), slog.Duration("d", 1500*time.Millisecond)),
		"quoted strings": rec("q",
			slog.String("empty", ""), slog.String("space", "a b"), slog.String("eq", "a=b"), slog.String("dq", `a"b`),
			slog.String("tab", "tab\t"), slog.String("nl", "a\nb"), slog.String("uni", "ünïcode"), slog.String("bad", "\xff"),
			slog.String("bs", `a\b`), slog.String("del", "a\x7fb"), slog.String("fffd", "a\uFFFDb"),
			slog.String("nbsp", "a\u00a0b"), slog.String("zwsp", "a\u200bb"), slog.String("emoji", "🙂"),
			slog.String("cjk", "日本語"), slog.String("quote1", "it's"), slog.String("braces", "{[()]}")),
		"quoted keys": rec("k",
			slog.String("a key", "v"), slog.Int("", 1), slog.Int("k=v", 2), slog.Bool(`k"`, true), slog.String("ké", "v"),
			slog.String("\xfe", "v")),
		"numbers": rec("n",
			slog.Int64("min", math.MinInt64), slog.Int64("max", math.MaxInt64), slog.Int("neg", -1),
			slog.Float64("nan", math.NaN()), slog.Float64("inf", math.Inf(1)), slog.Float64("ninf", math.Inf(-1)),
			slog.Float64("negz", math.Copysign(0, -1)), slog.Float64("tiny", 5e-324), slog.Float64("big", 1e21),
			slog.Float64("third", 1.0/3), slog.Float64("neg", -2.5), slog.Float64("int", 100)),
		"durations": rec("d",
			slog.Duration("zero", 0), slog.Duration("ns", 7), slog.Duration("us", 41200), slog.Duration("ms", 3*time.Millisecond),
			slog.Duration("neg", -90*time.Minute), slog.Duration("max", math.MaxInt64), slog.Duration("min", math.MinInt64),
			slog.Duration("h", 49*time.Hour+time.Nanosecond)),
		"many attrs": rec("many", slog.Int("a1", 1), slog.Int("a2", 2), slog.Int("a3", 3), slog.Int("a4", 4),
			slog.Int("a5", 5), slog.Int("a6", 6), slog.Int("a7", 7), slog.String("a8", "x y")),
		"long string": rec("long", slog.String("s", strings.Repeat("ab c", 5000))),
		"zero time":   atTime(accessRecord(), time.Time{}),
		"fixed zone":  atTime(accessRecord(), tm(2026, 12, 6, 20, 18, 1, 999999999, fixedZone)),
		"zero offset": atTime(accessRecord(), tm(2026, 1, 2, 3, 4, 5, 0, zeroOffsetZone)),
		"local":       atTime(accessRecord(), tm(2026, 7, 1, 0, 0, 0, 500000, time.Local)),
		"whole sec":   atTime(accessRecord(), tm(2026, 1, 1, 0, 0, 0, 0, time.UTC)),
		"sub-ms":      atTime(accessRecord(), tm(2026, 1, 1, 0, 0, 0, 999999, time.UTC)),
		"year 1":      atTime(accessRecord(), tm(1, 1, 1, 0, 0, 0, 1, time.UTC)),
		"year 10000":  atTime(accessRecord(), tm(10000, 1, 1, 0, 0, 0, 0, time.UTC)),
		"monotonic":   atTime(accessRecord(), time.Now()),
	}
	for _, l := range []slog.Level{slog.LevelDebug, slog.LevelDebug - 1, slog.LevelDebug - 9, slog.LevelInfo, slog.LevelInfo + 2,
		slog.LevelWarn, slog.LevelWarn + 1, slog.LevelError, slog.LevelError + 100, math.MaxInt, math.MinInt} {
		m["level "+l.String()] = atLevel(accessRecord(), l)
	}
	return m
}

// logValuer is a slog.LogValuer resolving to a string.
type logValuer struct{}

func (logValuer) LogValue() slog.Value { return slog.StringValue("resolved value") }

// delegatedRecords are records with an attribute the fast path hands to the standard handler.
func delegatedRecords() map[string]slog.Record {
	return map[string]slog.Record{
		"any":          rec("d", slog.String("s", "x"), slog.Any("any", []int{1, 2})),
		"any bytes":    rec("d", slog.Any("b", []byte("a b"))),
		"any error":    rec("d", slog.Any("err", fmt.Errorf("wrapped: %w", context.Canceled))),
		"group":        rec("d", slog.Group("g", slog.Int("a", 1), slog.String("b", "x y"))),
		"inline group": rec("d", slog.Group("", slog.Int("a", 1))),
		"time":         rec("d", slog.Time("at", accessTime)),
		"log valuer":   rec("d", slog.Any("lv", logValuer{})),
		"empty attr":   rec("d", slog.Int("a", 1), slog.Attr{}),
		"late any":     rec("d", slog.Int("a1", 1), slog.Int("a2", 2), slog.Int("a3", 3), slog.Int("a4", 4), slog.Int("a5", 5), slog.Int("a6", 6), slog.Any("a7", nil)),
	}
}

// handle writes r through h and fails t on an error.
func handle(t testing.TB, h slog.Handler, r slog.Record) {
	t.Helper()
	if err := h.Handle(context.Background(), r); err != nil {
		t.Fatalf("Handle: %v", err)
	}
}

// compare writes r through a logfmt handler and a slog.TextHandler built with
// opts (after applying derive to both) and fails t if the bytes differ.
func compare(t testing.TB, opts *slog.HandlerOptions, derive func(slog.Handler) slog.Handler, r slog.Record) {
	t.Helper()
	var got, want bytes.Buffer
	fast, std := NewTextHandler(&got, opts), slog.Handler(slog.NewTextHandler(&want, opts))
	if derive != nil {
		fast, std = derive(fast), derive(std)
	}
	handle(t, fast, r)
	handle(t, std, r)
	if !bytes.Equal(got.Bytes(), want.Bytes()) {
		t.Errorf("output differs\n got: %q\nwant: %q", got.Bytes(), want.Bytes())
	}
}

func TestFastPathMatchesTextHandler(t *testing.T) {
	for name, r := range fastRecords() {
		t.Run(name, func(t *testing.T) {
			if _, ok := appendRecord(nil, r); !ok {
				t.Fatal("record did not take the fast path")
			}
			compare(t, nil, nil, r)
		})
	}
}

func TestDelegatedMatchesTextHandler(t *testing.T) {
	for name, r := range delegatedRecords() {
		t.Run(name, func(t *testing.T) {
			if _, ok := appendRecord(nil, r); ok {
				t.Fatal("record took the fast path")
			}
			compare(t, nil, nil, r)
		})
	}

	replace := func(groups []string, a slog.Attr) slog.Attr {
		if a.Key == "model" {
			a.Value = slog.StringValue("redacted")
		}
		return a
	}
	derivations := map[string]func(slog.Handler) slog.Handler{
		"WithAttrs":       func(h slog.Handler) slog.Handler { return h.WithAttrs([]slog.Attr{slog.String("svc", "zest")}) },
		"WithGroup":       func(h slog.Handler) slog.Handler { return h.WithGroup("g") },
		"WithAttrs empty": func(h slog.Handler) slog.Handler { return h.WithAttrs(nil) },
		"WithGroup+Attrs": func(h slog.Handler) slog.Handler {
			return h.WithGroup("g").WithAttrs([]slog.Attr{slog.Int("n", 1)})
		},
	}
	optsCases := map[string]*slog.HandlerOptions{
		"ReplaceAttr": {ReplaceAttr: replace},
		"AddSource":   {AddSource: true},
		"Level":       {Level: slog.LevelDebug},
	}
	records := fastRecords()
	for name, r := range delegatedRecords() {
		records[name] = r
	}
	for rname, r := range records {
		for dname, derive := range derivations {
			t.Run(dname+"/"+rname, func(t *testing.T) { compare(t, nil, derive, r) })
		}
		for oname, opts := range optsCases {
			t.Run(oname+"/"+rname, func(t *testing.T) { compare(t, opts, nil, r) })
		}
	}
}

func TestEnabled(t *testing.T) {
	var lv slog.LevelVar
	for _, opts := range []*slog.HandlerOptions{nil, {}, {Level: slog.LevelWarn}, {Level: slog.LevelDebug - 3}, {Level: &lv}} {
		fast, std := NewTextHandler(nil, opts), slog.NewTextHandler(nil, opts)
		for _, set := range []slog.Level{slog.LevelInfo, slog.LevelError} {
			lv.Set(set)
			for l := slog.LevelDebug - 5; l <= slog.LevelError+5; l++ {
				if got, want := fast.Enabled(context.Background(), l), std.Enabled(context.Background(), l); got != want {
					t.Errorf("opts %+v: Enabled(%v) = %v, want %v", opts, l, got, want)
				}
			}
		}
	}
}

// errWriter fails every Write with err.
type errWriter struct{ err error }

func (w errWriter) Write([]byte) (int, error) { return 0, w.err }

func TestWriteErrorReturned(t *testing.T) {
	want := fmt.Errorf("disk full")
	if err := NewTextHandler(errWriter{want}, nil).Handle(context.Background(), accessRecord()); err != want {
		t.Errorf("Handle error = %v, want %v", err, want)
	}
}

func TestConcurrentLinesWhole(t *testing.T) {
	var out bytes.Buffer // not safe for concurrent use: the handler must serialize Writes
	h := NewTextHandler(&out, nil)
	derived := h.WithAttrs([]slog.Attr{slog.String("svc", "zest")}) // shares the lock with h
	const goroutines, perG = 16, 200
	var wg sync.WaitGroup
	for g := range goroutines {
		wg.Go(func() {
			for i := range perG {
				r := accessRecord()
				r.AddAttrs(slog.Int("g", g), slog.Int("i", i))
				hh := h
				if i%4 == 0 {
					hh = derived
				}
				if err := hh.Handle(context.Background(), r); err != nil {
					t.Errorf("Handle: %v", err)
				}
			}
		})
	}
	wg.Wait()

	var want bytes.Buffer
	std := slog.NewTextHandler(&want, nil)
	wantLine := func(h slog.Handler, g, i int) string {
		want.Reset()
		r := accessRecord()
		r.AddAttrs(slog.Int("g", g), slog.Int("i", i))
		handle(t, h, r)
		return want.String()
	}
	stdDerived := std.WithAttrs([]slog.Attr{slog.String("svc", "zest")})
	expected := map[string]int{}
	for g := range goroutines {
		for i := range perG {
			hh := slog.Handler(std)
			if i%4 == 0 {
				hh = stdDerived
			}
			expected[wantLine(hh, g, i)]++
		}
	}
	lines := strings.SplitAfter(out.String(), "\n")
	if last := lines[len(lines)-1]; last != "" {
		t.Fatalf("output does not end in a newline: %q", last)
	}
	lines = lines[:len(lines)-1]
	if len(lines) != goroutines*perG {
		t.Fatalf("got %d lines, want %d", len(lines), goroutines*perG)
	}
	for _, l := range lines {
		if expected[l] == 0 {
			t.Fatalf("unexpected (torn or duplicated) line %q", l)
		}
		expected[l]--
	}
}

func TestHandleAllocs(t *testing.T) {
	if testing.Short() || raceEnabled {
		t.Skip("allocation counts are not meaningful under -race")
	}
	h := NewTextHandler(discard{}, nil)
	r := atTime(accessRecord(), accessTime.In(fixedZone))
	r.AddAttrs(slog.Float64("similarity", 0.97), slog.Uint64("u", 7), slog.Duration("d", 90*time.Minute))
	if n := testing.AllocsPerRun(100, func() { handle(t, h, r) }); n != 0 {
		t.Errorf("Handle allocates %v times per record, want 0", n)
	}
}

// discard is an io.Writer that drops everything (a local type, so the
// benchmark does not measure io.Discard's special cases).
type discard struct{}

func (discard) Write(p []byte) (int, error) { return len(p), nil }

func BenchmarkHandle(b *testing.B) {
	r := accessRecord()
	r = atTime(r, time.Now().UTC())
	for _, bc := range []struct {
		name string
		h    slog.Handler
	}{
		{"slog", slog.NewTextHandler(discard{}, &slog.HandlerOptions{Level: slog.LevelInfo})},
		{"logfmt", NewTextHandler(discard{}, &slog.HandlerOptions{Level: slog.LevelInfo})},
	} {
		b.Run(bc.name, func(b *testing.B) {
			b.ReportAllocs()
			ctx := context.Background()
			for b.Loop() {
				if err := bc.h.Handle(ctx, r); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

func FuzzTextHandler(f *testing.F) {
	for _, r := range fastRecords() {
		r.Attrs(func(a slog.Attr) bool {
			v := a.Value
			switch v.Kind() {
			case slog.KindString:
				f.Add(a.Key, v.String(), int64(len(v.String())), 0.5, int(r.Level))
			case slog.KindInt64:
				f.Add(a.Key, a.Key, v.Int64(), 1.0, int(r.Level))
			case slog.KindFloat64:
				f.Add(a.Key, "", int64(-1), v.Float64(), int(r.Level))
			case slog.KindDuration:
				f.Add(a.Key, "d", int64(v.Duration()), 0.0, int(r.Level))
			}
			return true
		})
	}
	f.Fuzz(func(t *testing.T, key, value string, n int64, x float64, level int) {
		// The int64 doubles as a time (nanoseconds since 1970 in a zone picked by
		// its sign), a duration and an unsigned value.
		loc := time.UTC
		if n < 0 {
			loc = fixedZone
		}
		r := slog.NewRecord(time.Unix(0, n).In(loc), slog.Level(level), value, 0)
		r.AddAttrs(slog.String(key, value), slog.Int64(key+"_i", n), slog.Float64("x", x),
			slog.Duration(value, time.Duration(n)), slog.Uint64("u", uint64(n)), slog.Bool(key, n&1 == 0))
		compare(t, nil, nil, r)
	})
}

// attrsOf returns r's attributes as AddAttrs kept them.
func attrsOf(r slog.Record) []slog.Attr {
	var out []slog.Attr
	r.Attrs(func(a slog.Attr) bool { out = append(out, a); return true })
	return out
}

// TestHandleAttrsMatchesTextHandler: HandleAttrs of a record's parts writes what
// slog.TextHandler writes for the record, on the fast path and delegated alike.
func TestHandleAttrsMatchesTextHandler(t *testing.T) {
	records := fastRecords()
	for name, r := range delegatedRecords() {
		records["delegated "+name] = r
	}
	for name, r := range records {
		t.Run(name, func(t *testing.T) {
			var got, want bytes.Buffer
			fast := NewTextHandler(&got, nil).(AttrsHandler)
			if err := fast.HandleAttrs(context.Background(), r.Time, r.Level, r.Message, attrsOf(r)); err != nil {
				t.Fatal(err)
			}
			handle(t, slog.NewTextHandler(&want, nil), r)
			if !bytes.Equal(got.Bytes(), want.Bytes()) {
				t.Errorf("output differs\n got: %q\nwant: %q", got.Bytes(), want.Bytes())
			}
		})
	}
}

// TestHandleAttrsAllocs: an access line of nine scalar attributes, more than a slog.Record
// keeps inline, costs no allocation through HandleAttrs.
func TestHandleAttrsAllocs(t *testing.T) {
	if testing.Short() || raceEnabled {
		t.Skip("allocation counts are not meaningful under -race")
	}
	h := NewTextHandler(discard{}, nil).(AttrsHandler)
	attrs := []slog.Attr{slog.String("method", "POST"), slog.String("path", "/v1/chat/completions"),
		slog.Int("status", 200), slog.Duration("duration", 1500*time.Microsecond), slog.String("cache", "HIT"),
		slog.String("model", "gpt-4o-mini"), slog.Bool("stream", false), slog.String("entry", "0123456789ab"),
		slog.String("tenant", "f3abf2a6")}
	ctx := context.Background()
	if n := testing.AllocsPerRun(100, func() {
		if err := h.HandleAttrs(ctx, accessTime, slog.LevelInfo, "request", attrs); err != nil {
			t.Fatal(err)
		}
	}); n != 0 {
		t.Errorf("HandleAttrs allocates %v times per line, want 0", n)
	}
}

// TestHandleAttrsFunc: the package's HandleAttrs gives a line to zest's own handler directly
// (an access line built in a stack array then costs no allocation), to any other AttrsHandler
// (a copy of the attributes), and to no other handler.
func TestHandleAttrsFunc(t *testing.T) {
	ctx := context.Background()
	attrs := []slog.Attr{slog.String("cache", "HIT"), slog.Int("status", 200)}
	var own, wrapped strings.Builder
	other := &forwardAttrs{h: NewTextHandler(&wrapped, nil).(AttrsHandler)}
	for _, tc := range []struct {
		name string
		h    slog.Handler
		out  *strings.Builder
	}{{"logfmt", NewTextHandler(&own, nil), &own}, {"another AttrsHandler", other, &wrapped}} {
		if ok, err := HandleAttrs(ctx, tc.h, accessTime, slog.LevelInfo, "request", attrs); !ok || err != nil {
			t.Errorf("%s: HandleAttrs = %v, %v", tc.name, ok, err)
		}
		if !strings.Contains(tc.out.String(), "msg=request cache=HIT status=200\n") {
			t.Errorf("%s: wrote %q", tc.name, tc.out.String())
		}
	}
	if other.lines != 1 {
		t.Errorf("the other AttrsHandler got %d lines, want 1", other.lines)
	}
	if ok, _ := HandleAttrs(ctx, slog.NewTextHandler(io.Discard, nil), accessTime, slog.LevelInfo, "request", attrs); ok {
		t.Error("HandleAttrs took a line for slog's own handler, which has no HandleAttrs")
	}
	if raceEnabled {
		return // allocation counts are not meaningful under -race
	}
	h := NewTextHandler(discard{}, nil)
	if n := testing.AllocsPerRun(100, func() {
		var buf [4]slog.Attr
		line := append(buf[:0], slog.String("method", "POST"), slog.Int("status", 200))
		if _, err := HandleAttrs(ctx, h, accessTime, slog.LevelInfo, "request", line); err != nil {
			t.Fatal(err)
		}
	}); n != 0 {
		t.Errorf("a line in a stack array allocates %v times through HandleAttrs, want 0", n)
	}
}

// forwardAttrs is an AttrsHandler that is not the package's own: it counts the lines it passes on.
type forwardAttrs struct {
	h     AttrsHandler
	lines int
}

func (f *forwardAttrs) Enabled(context.Context, slog.Level) bool { return true }
func (f *forwardAttrs) Handle(ctx context.Context, r slog.Record) error {
	return f.h.(slog.Handler).Handle(ctx, r)
}
func (f *forwardAttrs) WithAttrs([]slog.Attr) slog.Handler { return f }
func (f *forwardAttrs) WithGroup(string) slog.Handler      { return f }
func (f *forwardAttrs) HandleAttrs(ctx context.Context, t time.Time, level slog.Level, msg string, attrs []slog.Attr) error {
	f.lines++
	return f.h.HandleAttrs(ctx, t, level, msg, attrs)
}

// TestTimeOncePerSecond: a line's time is log/slog's whether it was formatted in full or from
// the second shared with the previous line (lastSecond), across zones, milliseconds within a
// second, and years at the edge of the plain layout.
func TestTimeOncePerSecond(t *testing.T) {
	zones := []*time.Location{time.UTC, time.Local, time.FixedZone("A", -7*3600), time.FixedZone("B", 5*3600+45*60)}
	want := func(tm time.Time) string {
		var buf bytes.Buffer
		r := slog.NewRecord(tm, slog.LevelInfo, "m", 0)
		slog.NewTextHandler(&buf, nil).Handle(context.Background(), r)
		line := buf.String()
		return line[len("time="):strings.IndexByte(line, ' ')]
	}
	rng := rand.New(rand.NewPCG(3, 4))
	base := []time.Time{time.Date(9999, 12, 31, 23, 59, 59, 0, time.UTC), time.Date(10000, 1, 1, 0, 0, 0, 0, time.UTC),
		time.Date(0, 1, 1, 0, 0, 0, 0, time.UTC), time.Now()}
	for range 300 {
		base = append(base, time.Unix(rng.Int64N(4_000_000_000), 0))
	}
	for _, b := range base {
		for _, z := range zones {
			for _, ns := range []int{0, 999_999, 1_000_000, 123_456_789, 999_999_999} {
				tm := time.Date(b.Year(), b.Month(), b.Day(), b.Hour(), b.Minute(), b.Second(), ns, b.Location()).In(z)
				for pass := range 2 { // the second pass finds the second formatted
					if got := string(appendRFC3339Millis(nil, tm)); got != want(tm) {
						t.Fatalf("pass %d: %v formats as %s, want %s", pass, tm, got, want(tm))
					}
				}
			}
		}
	}
}

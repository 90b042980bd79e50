// Package logfmt provides a drop-in replacement for [slog.NewTextHandler] that
// formats the common record shape, flat attributes of scalar kinds, without the
// standard handler's per-record bookkeeping, and delegates everything else to
// the standard handler. Its output is byte for byte the standard handler's.
package logfmt

import (
	"context"
	"io"
	"log/slog"
	"slices"
	"strconv"
	"sync"
	"sync/atomic"
	"time"
	"unicode"
	"unicode/utf8"
)

// NewTextHandler returns a slog.Handler whose output is byte for byte slog.NewTextHandler(w, opts)'s,
// faster for the records most lines are: records whose attributes are all of
// kind String, Int64, Uint64, Bool, Float64 or Duration, logged through a
// handler without ReplaceAttr, AddSource, groups or attributes added by
// WithAttrs. Those are formatted here; any other record is handed whole to the
// standard handler. Like the standard handler it makes one Write call per
// record, and Write calls never overlap, including those of the handlers that
// WithAttrs and WithGroup return.
func NewTextHandler(w io.Writer, opts *slog.HandlerOptions) slog.Handler {
	if opts != nil && (opts.ReplaceAttr != nil || opts.AddSource) {
		// Every record goes through ReplaceAttr or shows its source: no fast path.
		return slog.NewTextHandler(w, opts)
	}
	lw := &lockedWriter{w: w}
	return &handler{std: slog.NewTextHandler(lw, opts), out: lw}
}

// handler is the fast TextHandler. It has no groups and no pre-attached
// attributes, and its options have neither ReplaceAttr nor AddSource, so a
// record of scalar attributes formats the same here as in std.
type handler struct {
	std *slog.TextHandler // the standard handler, writing through out
	out *lockedWriter
}

// Enabled reports whether the standard handler is enabled for level, that is
// whether level is at least opts.Level (Info if unset).
func (h *handler) Enabled(ctx context.Context, level slog.Level) bool {
	return h.std.Enabled(ctx, level)
}

// WithAttrs returns the standard handler's WithAttrs: records through it
// always take the standard path, and it writes through the same lock.
func (h *handler) WithAttrs(attrs []slog.Attr) slog.Handler {
	return h.std.WithAttrs(attrs)
}

// WithGroup returns the standard handler's WithGroup: records through it
// always take the standard path, and it writes through the same lock.
func (h *handler) WithGroup(name string) slog.Handler {
	return h.std.WithGroup(name)
}

// Handle formats r as a line and writes it with one Write call. Records with
// an attribute of a kind appendRecord does not format go to the standard
// handler. Write errors are returned as the writer gave them, as the standard
// handler does.
func (h *handler) Handle(ctx context.Context, r slog.Record) error {
	bp := bufPool.Get().(*[]byte)
	defer freeBuf(bp)
	b, ok := appendRecord((*bp)[:0], r)
	*bp = b
	if !ok {
		return h.std.Handle(ctx, r)
	}
	_, err := h.out.Write(b)
	return err
}

// AttrsHandler is implemented by the handler NewTextHandler returns. HandleAttrs writes the
// line of the record made of t, level, msg and attrs, as Handle writes it, without the caller
// building that record: a slog.Record keeps five attributes inline and allocates for more, on
// every line of a busy access log.
type AttrsHandler interface {
	HandleAttrs(ctx context.Context, t time.Time, level slog.Level, msg string, attrs []slog.Attr) error
}

// HandleAttrs hands a line to h when h implements AttrsHandler, and reports whether it did. The
// handler NewTextHandler returns is called directly, not through the interface, so that attrs,
// which it does not keep, may live on the caller's stack; any other AttrsHandler gets a copy.
func HandleAttrs(ctx context.Context, h slog.Handler, t time.Time, level slog.Level, msg string, attrs []slog.Attr) (bool, error) {
	switch h := h.(type) {
	case *handler:
		return true, h.HandleAttrs(ctx, t, level, msg, attrs)
	case AttrsHandler:
		return true, h.HandleAttrs(ctx, t, level, msg, slices.Clone(attrs))
	}
	return false, nil
}

// HandleAttrs implements AttrsHandler.
func (h *handler) HandleAttrs(ctx context.Context, t time.Time, level slog.Level, msg string, attrs []slog.Attr) error {
	bp := bufPool.Get().(*[]byte)
	defer freeBuf(bp)
	b, ok := appendHead((*bp)[:0], t, level, msg)
	for _, a := range attrs {
		if b, ok = appendAttr(b, a); !ok {
			break
		}
	}
	if !ok {
		*bp = b
		r := slog.NewRecord(t, level, msg, 0)
		r.AddAttrs(attrs...)
		return h.std.Handle(ctx, r)
	}
	b = append(b, '\n')
	*bp = b
	_, err := h.out.Write(b)
	return err
}

// maxPooled is the largest buffer capacity kept in bufPool, as in log/slog, so
// that one huge record does not pin its buffer for good.
const maxPooled = 16 << 10

// bufPool holds *[]byte line buffers, so that a record costs no allocation.
var bufPool = sync.Pool{New: func() any {
	b := make([]byte, 0, 1024)
	return &b
}}

// freeBuf returns bp to bufPool unless it grew beyond maxPooled.
func freeBuf(bp *[]byte) {
	if cap(*bp) <= maxPooled {
		*bp = (*bp)[:0]
		bufPool.Put(bp)
	}
}

// lockedWriter serializes Write calls to w. The fast path and the standard
// handlers (which hold their own lock, then this one) all write through it, so
// each record reaches w in one piece.
type lockedWriter struct {
	mu sync.Mutex
	w  io.Writer
}

func (l *lockedWriter) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.w.Write(p)
}

// appendRecord appends r's line as slog.TextHandler (no groups, no
// ReplaceAttr, no source) writes it, newline included, and reports true; or
// reports false, with b's contents unspecified, if r has an attribute of a kind
// it does not format.
func appendRecord(b []byte, r slog.Record) ([]byte, bool) {
	b, ok := appendHead(b, r.Time, r.Level, r.Message)
	r.Attrs(func(a slog.Attr) bool {
		b, ok = appendAttr(b, a)
		return ok
	})
	return append(b, '\n'), ok
}

// appendHead appends the time (unless zero), level and message of a line; ok is always true.
func appendHead(b []byte, t time.Time, level slog.Level, msg string) (_ []byte, ok bool) {
	if !t.IsZero() {
		b = append(b, "time="...)
		b = appendRFC3339Millis(b, t)
		b = append(b, ' ')
	}
	b = append(b, "level="...)
	b = appendLevel(b, level)
	b = append(b, " msg="...)
	return appendString(b, msg), true
}

// appendAttr appends " key=value" for an attribute of a scalar kind, or reports false, with b's
// contents unspecified, for any other kind (the standard handler's business).
func appendAttr(b []byte, a slog.Attr) ([]byte, bool) {
	b = append(b, ' ')
	b = appendString(b, a.Key)
	b = append(b, '=')
	switch v := a.Value; v.Kind() {
	case slog.KindString:
		b = appendString(b, v.String())
	case slog.KindInt64:
		b = strconv.AppendInt(b, v.Int64(), 10)
	case slog.KindUint64:
		b = strconv.AppendUint(b, v.Uint64(), 10)
	case slog.KindBool:
		b = strconv.AppendBool(b, v.Bool())
	case slog.KindFloat64:
		b = strconv.AppendFloat(b, v.Float64(), 'g', -1, 64)
	case slog.KindDuration:
		b = append(b, v.Duration().String()...) // inlined: the string stays on the stack
	default: // Any, Time, Group, LogValuer: the standard handler's business
		return b, false
	}
	return b, true
}

// appendRFC3339Millis appends t as log/slog's function of that name does:
// RFC 3339 with exactly three fractional digits (truncated) and the zone as
// time.RFC3339Nano writes it ("Z" for a zero offset, else "+hh:mm"). It is
// that function's algorithm, quirks included (years past 9999 come out as
// log/slog writes them, with the wrong digit dropped). The date, the time to
// the second and the zone are formatted once per second (see lastSecond).
func appendRFC3339Millis(b []byte, t time.Time) []byte {
	sec := t.Unix()
	if p := lastSecond.Load(); p != nil && p.sec == sec && p.loc == t.Location() {
		ms := t.Nanosecond() / 1e6
		b = append(b, p.head[:]...)
		b = append(b, byte('0'+ms/100), byte('0'+ms/10%10), byte('0'+ms%10))
		return append(b, p.zone...)
	}
	// RFC3339Nano trims trailing zeros; adding a tenth of a millisecond
	// guarantees four fractional digits, and the fourth is dropped.
	const prefixLen = len("2006-01-02T15:04:05.000")
	n := len(b)
	t = t.Truncate(time.Millisecond).Add(time.Millisecond / 10)
	b = t.AppendFormat(b, time.RFC3339Nano)
	b = append(b[:n+prefixLen], b[n+prefixLen+1:]...)
	if y := t.Year(); y >= 0 && y <= 9999 { // the layout is the plain one
		p := &secondPrefix{sec: sec, loc: t.Location(), zone: string(b[n+prefixLen:])}
		copy(p.head[:], b[n:])
		lastSecond.Store(p)
	}
	return b
}

// secondPrefix is a second's line time but for the milliseconds: the date and time to the
// second with the decimal point ("2006-01-02T15:04:05."), and the zone.
type secondPrefix struct {
	sec  int64
	loc  *time.Location
	head [len("2006-01-02T15:04:05.")]byte
	zone string
}

// lastSecond holds the most recent second a line was written in: within it, lines share the
// formatting of everything but the milliseconds.
var lastSecond atomic.Pointer[secondPrefix]

// appendLevel appends l.String() (DEBUG, INFO, WARN, ERROR, with an offset
// such as INFO+2 or DEBUG-1) without allocating. Those strings never need
// quoting.
func appendLevel(b []byte, l slog.Level) []byte {
	base, off := "ERROR", l-slog.LevelError
	switch {
	case l < slog.LevelInfo:
		base, off = "DEBUG", l-slog.LevelDebug
	case l < slog.LevelWarn:
		base, off = "INFO", l-slog.LevelInfo
	case l < slog.LevelError:
		base, off = "WARN", l-slog.LevelWarn
	}
	b = append(b, base...)
	if off > 0 {
		b = append(b, '+')
	}
	if off != 0 {
		b = strconv.AppendInt(b, int64(off), 10)
	}
	return b
}

// appendString appends s as TextHandler writes keys and string values: as is,
// or Go-quoted by strconv if needsQuoting(s).
func appendString(b []byte, s string) []byte {
	if needsQuoting(s) {
		return strconv.AppendQuote(b, s)
	}
	return append(b, s...)
}

// needsQuoting reports whether TextHandler quotes s: if s is empty, or has an
// ASCII control character, a space, '"' or '=', or a rune that is invalid
// UTF-8, U+FFFD, a Unicode space or not printable. Backslash and DEL are
// written as is, as TextHandler does.
func needsQuoting(s string) bool {
	if len(s) == 0 {
		return true
	}
	for i := 0; i < len(s); {
		c := s[i]
		if plainASCII[c] {
			i++
			continue
		}
		if c < utf8.RuneSelf {
			return true
		}
		r, size := utf8.DecodeRuneInString(s[i:])
		if r == utf8.RuneError || unicode.IsSpace(r) || !unicode.IsPrint(r) {
			return true
		}
		i += size
	}
	return false
}

// plainASCII[c] is true for the ASCII bytes c that TextHandler writes unquoted:
// '!' through DEL except '"' and '='. It is false for bytes of multi-byte runes.
var plainASCII = func() (t [256]bool) {
	for c := '!'; c < utf8.RuneSelf; c++ {
		t[c] = c != '"' && c != '='
	}
	return t
}()

package load

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"strconv"
	"time"
)

// Outcome is what one request produced.
type Outcome struct {
	Status      int           // HTTP status; 0 when the request failed
	CacheStatus string        // X-Cache-Status header (HIT, MISS, BYPASS, nginx's EXPIRED...)
	CacheType   string        // X-Cache-Type header (exact, semantic)
	RetryAfter  bool          // a Retry-After header was present
	FirstToken  time.Duration // streams: time from send to the first content (or tool-call) delta
	Bytes       int           // body bytes read
	Err         error         // transport or protocol error
}

// Doer sends one raw request and reads its whole response. A Doer is used by
// one goroutine at a time.
type Doer interface {
	Do(ctx context.Context, req []byte) Outcome
	Close() error
}

// Conn is a minimal keep-alive HTTP/1.1 client over one TCP connection,
// far cheaper per request than net/http's client so the driver is not the
// bottleneck. It reads Content-Length, chunked and close-delimited bodies,
// and redials after an error or a Connection: close. Zero Timeout means 10s.
type Conn struct {
	Addr    string
	Timeout time.Duration
	// Stream makes Do scan the body for the first SSE content delta and set
	// Outcome.FirstToken.
	Stream bool

	c       net.Conn
	br      *bufio.Reader
	scratch []byte
}

// Close closes the connection, if open.
func (c *Conn) Close() error {
	if c.c == nil {
		return nil
	}
	err := c.c.Close()
	c.c, c.br = nil, nil
	return err
}

// Do writes req (a complete HTTP/1.1 request) and reads the response.
func (c *Conn) Do(ctx context.Context, req []byte) Outcome {
	start := time.Now()
	out, keep := c.do(ctx, req, start)
	if out.Err != nil || !keep {
		_ = c.Close()
	}
	return out
}

func (c *Conn) do(ctx context.Context, req []byte, start time.Time) (Outcome, bool) {
	var out Outcome
	if c.c == nil {
		var d net.Dialer
		conn, err := d.DialContext(ctx, "tcp", c.Addr)
		if err != nil {
			out.Err = fmt.Errorf("dial: %w", err)
			return out, false
		}
		c.c, c.br = conn, bufio.NewReaderSize(conn, 32<<10)
	}
	timeout := c.Timeout
	if timeout <= 0 {
		timeout = 10 * time.Second
	}
	deadline := start.Add(timeout)
	if d, ok := ctx.Deadline(); ok && d.Before(deadline) {
		deadline = d
	}
	_ = c.c.SetDeadline(deadline)
	if _, err := c.c.Write(req); err != nil {
		out.Err = fmt.Errorf("write: %w", err)
		return out, false
	}
	line, err := c.br.ReadSlice('\n')
	if err != nil {
		out.Err = fmt.Errorf("read status: %w", err)
		return out, false
	}
	if len(line) < 12 || !bytes.HasPrefix(line, []byte("HTTP/1.")) {
		out.Err = fmt.Errorf("bad status line %q", line)
		return out, false
	}
	out.Status, err = strconv.Atoi(string(line[9:12]))
	if err != nil {
		out.Err = fmt.Errorf("bad status line %q", line)
		return out, false
	}
	length, chunked, keep := int64(-1), false, line[7] == '1'
	for {
		line, err = c.br.ReadSlice('\n')
		if err != nil {
			out.Err = fmt.Errorf("read header: %w", err)
			return out, false
		}
		line = bytes.TrimRight(line, "\r\n")
		if len(line) == 0 {
			break
		}
		name, val, ok := bytes.Cut(line, []byte(":"))
		if !ok {
			continue
		}
		val = bytes.TrimSpace(val)
		switch {
		case bytes.EqualFold(name, []byte("Content-Length")):
			length, err = strconv.ParseInt(string(val), 10, 64)
			if err != nil {
				out.Err = fmt.Errorf("bad content-length %q", val)
				return out, false
			}
		case bytes.EqualFold(name, []byte("Transfer-Encoding")):
			chunked = bytes.Contains(bytes.ToLower(val), []byte("chunked"))
		case bytes.EqualFold(name, []byte("Connection")):
			if bytes.EqualFold(val, []byte("close")) {
				keep = false
			} else if bytes.EqualFold(val, []byte("keep-alive")) {
				keep = true
			}
		case bytes.EqualFold(name, []byte("X-Cache-Status")):
			out.CacheStatus = string(val)
		case bytes.EqualFold(name, []byte("X-Cache-Type")):
			out.CacheType = string(val)
		case bytes.EqualFold(name, []byte("Retry-After")):
			out.RetryAfter = true
		}
	}
	c.scratch = c.scratch[:0]
	scan := 0
	consume := func(p []byte) {
		out.Bytes += len(p)
		if !c.Stream || out.FirstToken != 0 {
			return
		}
		c.scratch = append(c.scratch, p...)
		if firstDelta(c.scratch[max(0, scan-16):]) {
			out.FirstToken = time.Since(start)
		}
		scan = len(c.scratch)
	}
	switch {
	case chunked:
		err = c.readChunked(consume)
	case length >= 0:
		err = c.readN(length, consume)
	default:
		keep = false
		err = c.readN(-1, consume)
	}
	if err != nil {
		out.Err = err
		return out, false
	}
	return out, keep
}

// readN reads n body bytes (n < 0: until EOF) and passes them to consume.
func (c *Conn) readN(n int64, consume func([]byte)) error {
	for n != 0 {
		p, err := c.br.Peek(1)
		if err != nil {
			if n < 0 && errors.Is(err, io.EOF) {
				return nil
			}
			return fmt.Errorf("read body: %w", err)
		}
		k := c.br.Buffered()
		if n > 0 && int64(k) > n {
			k = int(n)
		}
		p, _ = c.br.Peek(k)
		consume(p)
		_, _ = c.br.Discard(k)
		if n > 0 {
			n -= int64(k)
		}
	}
	return nil
}

// readChunked reads a chunked body and its trailers.
func (c *Conn) readChunked(consume func([]byte)) error {
	for {
		line, err := c.br.ReadSlice('\n')
		if err != nil {
			return fmt.Errorf("read chunk size: %w", err)
		}
		line = bytes.TrimRight(line, "\r\n")
		if i := bytes.IndexByte(line, ';'); i >= 0 {
			line = line[:i]
		}
		size, err := strconv.ParseInt(string(bytes.TrimSpace(line)), 16, 64)
		if err != nil || size < 0 {
			return fmt.Errorf("bad chunk size %q", line)
		}
		if size == 0 {
			for { // trailers
				line, err = c.br.ReadSlice('\n')
				if err != nil {
					return fmt.Errorf("read trailer: %w", err)
				}
				if len(bytes.TrimRight(line, "\r\n")) == 0 {
					return nil
				}
			}
		}
		if err := c.readN(size, consume); err != nil {
			return err
		}
		if _, err := c.br.Discard(2); err != nil {
			return fmt.Errorf("read chunk end: %w", err)
		}
	}
}

var (
	contentKey = []byte(`"content":"`)
	argsKey    = []byte(`"arguments":"`)
)

// firstDelta reports whether p holds a non-empty content or tool-call
// arguments string, i.e. the first token of a streamed answer.
func firstDelta(p []byte) bool {
	for _, key := range [][]byte{contentKey, argsKey} {
		for q := p; ; {
			i := bytes.Index(q, key)
			if i < 0 || i+len(key) >= len(q) {
				break
			}
			if q[i+len(key)] != '"' {
				return true
			}
			q = q[i+len(key):]
		}
	}
	return false
}

// BuildRequest returns a complete HTTP/1.1 request with the given method,
// path, host, extra header lines ("Name: value") and body.
func BuildRequest(dst []byte, method, host, path string, headers []string, body []byte) []byte {
	dst = append(dst, method...)
	dst = append(dst, ' ')
	dst = append(dst, path...)
	dst = append(dst, " HTTP/1.1\r\nHost: "...)
	dst = append(dst, host...)
	dst = append(dst, "\r\n"...)
	for _, h := range headers {
		dst = append(dst, h...)
		dst = append(dst, "\r\n"...)
	}
	if body != nil {
		dst = append(dst, "Content-Type: application/json\r\nContent-Length: "...)
		dst = strconv.AppendInt(dst, int64(len(body)), 10)
		dst = append(dst, "\r\n"...)
	}
	dst = append(dst, "\r\n"...)
	return append(dst, body...)
}

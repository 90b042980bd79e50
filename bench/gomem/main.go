// Command gomem is the bench's reference point for what a Go net/http server can do answering
// from memory: a minimal exact cache in front of the upstream, as nginx's proxy_cache is in
// the nginx-hit scenario. A POST's key is the SHA-256 of its path and body; the first request
// of a key is forwarded and its 200 answer kept (status, Content-Type, body); later ones are
// answered from the map. No JSON is parsed, no header but Content-Type is kept, nothing
// expires: it measures net/http's own cost per request, the floor under zest's exact hit.
//
//	gomem -listen 127.0.0.1:9997 -upstream http://127.0.0.1:9999
package main

import (
	"bytes"
	"crypto/sha256"
	"flag"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"strconv"
	"sync"
	"time"
)

type answer struct {
	contentType string
	length      string
	body        []byte
}

type server struct {
	upstream string
	client   *http.Client
	mu       sync.RWMutex
	answers  map[[sha256.Size]byte]*answer
}

var bufs = sync.Pool{New: func() any { return new(bytes.Buffer) }}

func (s *server) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if r.URL.Path == "/healthz" {
		return
	}
	buf := bufs.Get().(*bytes.Buffer)
	defer bufs.Put(buf)
	buf.Reset()
	if _, err := buf.ReadFrom(r.Body); err != nil {
		http.Error(w, err.Error(), http.StatusBadRequest)
		return
	}
	h := sha256.New()
	io.WriteString(h, r.URL.Path)
	h.Write(buf.Bytes())
	var key [sha256.Size]byte
	h.Sum(key[:0])
	s.mu.RLock()
	a := s.answers[key]
	s.mu.RUnlock()
	if a == nil {
		var err error
		if a, err = s.fetch(r, buf.Bytes()); err != nil {
			http.Error(w, err.Error(), http.StatusBadGateway)
			return
		}
		s.mu.Lock()
		s.answers[key] = a
		s.mu.Unlock()
	}
	hdr := w.Header()
	hdr["Content-Type"] = []string{a.contentType}
	hdr["Content-Length"] = []string{a.length}
	w.Write(a.body)
}

func (s *server) fetch(r *http.Request, body []byte) (*answer, error) {
	req, err := http.NewRequestWithContext(r.Context(), r.Method, s.upstream+r.URL.RequestURI(), bytes.NewReader(body))
	if err != nil {
		return nil, err
	}
	req.Header = r.Header.Clone()
	resp, err := s.client.Do(req)
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		return nil, err
	}
	if resp.StatusCode != http.StatusOK {
		return nil, fmt.Errorf("upstream answered %d", resp.StatusCode)
	}
	return &answer{resp.Header.Get("Content-Type"), strconv.Itoa(len(b)), b}, nil
}

func main() {
	listen := flag.String("listen", "127.0.0.1:9997", "address to listen on")
	upstream := flag.String("upstream", "http://127.0.0.1:9999", "upstream origin; request paths are kept as they are")
	flag.Parse()
	s := &server{upstream: *upstream, client: &http.Client{Timeout: 30 * time.Second},
		answers: map[[sha256.Size]byte]*answer{}}
	ln, err := net.Listen("tcp", *listen)
	if err != nil {
		fmt.Fprintln(os.Stderr, "gomem:", err)
		os.Exit(1)
	}
	fmt.Printf("http://%s\n", ln.Addr())
	srv := &http.Server{Handler: s, ReadHeaderTimeout: 10 * time.Second}
	if err := srv.Serve(ln); err != nil {
		fmt.Fprintln(os.Stderr, "gomem:", err)
		os.Exit(1)
	}
}

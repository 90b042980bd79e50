// Command revproxy is the bench's reference point for a bare Go reverse
// proxy, in its best configuration: a stdlib httputil.ReverseProxy with a
// shared, tuned Transport (1000 idle connections per host, no HTTP/2, no
// compression), a pool of copy buffers, and the default flushing (an answer
// with a length is written once; text/event-stream and answers of unknown
// length are flushed at every write, as ReverseProxy always does for them),
// forwarding every path to the upstream unchanged.
//
//	revproxy -listen 127.0.0.1:9998 -upstream http://127.0.0.1:9999
package main

import (
	"flag"
	"fmt"
	"net"
	"net/http"
	"net/http/httputil"
	"net/url"
	"os"
	"sync"
	"time"
)

// bufferPool lends ReverseProxy its 32 KiB copy buffers from a sync.Pool instead of
// allocating one per request.
type bufferPool struct{}

var buffers = sync.Pool{New: func() any { b := make([]byte, 32<<10); return &b }}

func (bufferPool) Get() []byte { return *buffers.Get().(*[]byte) }

func (bufferPool) Put(b []byte) { buffers.Put(&b) }

func main() {
	listen := flag.String("listen", "127.0.0.1:9998", "address to listen on")
	upstream := flag.String("upstream", "http://127.0.0.1:9999", "upstream origin; request paths are kept as they are")
	flag.Parse()
	target, err := url.Parse(*upstream)
	if err != nil || target.Host == "" {
		fmt.Fprintln(os.Stderr, "revproxy: bad -upstream:", *upstream)
		os.Exit(2)
	}
	tr := &http.Transport{
		Proxy:               nil,
		DialContext:         (&net.Dialer{Timeout: 5 * time.Second, KeepAlive: 30 * time.Second}).DialContext,
		MaxIdleConns:        1000,
		MaxIdleConnsPerHost: 1000,
		IdleConnTimeout:     90 * time.Second,
		DisableCompression:  true,
		ForceAttemptHTTP2:   false,
	}
	rp := &httputil.ReverseProxy{
		Rewrite: func(pr *httputil.ProxyRequest) {
			pr.SetURL(target)
			pr.Out.Host = pr.In.Host
		},
		Transport:  tr,
		BufferPool: bufferPool{},
	}
	ln, err := net.Listen("tcp", *listen)
	if err != nil {
		fmt.Fprintln(os.Stderr, "revproxy:", err)
		os.Exit(1)
	}
	fmt.Printf("http://%s\n", ln.Addr())
	srv := &http.Server{Handler: rp, ReadHeaderTimeout: 10 * time.Second}
	if err := srv.Serve(ln); err != nil {
		fmt.Fprintln(os.Stderr, "revproxy:", err)
		os.Exit(1)
	}
}

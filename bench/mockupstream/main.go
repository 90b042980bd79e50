// Command mockupstream serves the bench/mock OpenAI-compatible upstream on a
// loopback address, so zest can be tried offline:
//
//	go run ./bench/mockupstream                 # prints http://127.0.0.1:9999/v1
//	go run ./cmd/zest -upstream http://127.0.0.1:9999/v1
//
// Flags set the mock's latency, time to first token, tokens per second,
// answer length and error injection; see -help. Request headers such as
// X-Mock-Status: 429 or X-Mock-Latency: 50ms override them per request.
// GET /mock/stats returns the call counters. SIGINT or SIGTERM stops it.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"os"
	"os/signal"
	"syscall"
	"time"

	"github.com/zest-proxy/zest/bench/mock"
)

func main() {
	if err := run(os.Args[1:]); err != nil {
		fmt.Fprintln(os.Stderr, "mockupstream:", err)
		os.Exit(2)
	}
}

func run(args []string) error {
	fs := flag.NewFlagSet("mockupstream", flag.ContinueOnError)
	listen := fs.String("listen", "127.0.0.1:9999", "address to listen on (loopback recommended)")
	var o mock.Options
	fs.DurationVar(&o.Latency, "latency", 0, "delay before a non-streamed answer")
	fs.DurationVar(&o.TTFT, "ttft", 0, "delay before the first streamed event")
	fs.Float64Var(&o.TokensPerSecond, "tps", 0, "streamed tokens per second after the first chunk (0 = unpaced)")
	fs.IntVar(&o.AnswerTokens, "tokens", 32, "answer length in tokens")
	fs.IntVar(&o.Chunks, "chunks", 4, "content chunks per streamed answer")
	fs.IntVar(&o.EmbeddingDim, "dim", 64, "embedding dimensions when the request sets none")
	fs.Float64Var(&o.ErrorRate, "error-rate", 0, "fraction of requests answered 500")
	fs.Float64Var(&o.RateLimitRate, "429-rate", 0, "fraction of requests answered 429")
	fs.Uint64Var(&o.Seed, "seed", 1, "seed for error injection")
	verbose := fs.Bool("v", false, "log every request")
	if err := fs.Parse(args); err != nil {
		return err
	}
	level := slog.LevelInfo
	if *verbose {
		level = slog.LevelDebug
	}
	log := slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: level}))
	o.Logger = log
	m := mock.New(o)

	ln, err := net.Listen("tcp", *listen)
	if err != nil {
		return fmt.Errorf("listen: %w", err)
	}
	srv := &http.Server{Handler: m, ReadHeaderTimeout: 10 * time.Second}
	fmt.Printf("http://%s/v1\n", ln.Addr())

	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	errc := make(chan error, 1)
	go func() { errc <- srv.Serve(ln) }()
	select {
	case err := <-errc:
		return fmt.Errorf("serve: %w", err)
	case <-ctx.Done():
	}
	sctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if err := srv.Shutdown(sctx); err != nil && !errors.Is(err, context.DeadlineExceeded) {
		return fmt.Errorf("shutdown: %w", err)
	}
	log.Info("mockupstream stopped", "stats", fmt.Sprintf("%+v", m.Stats()))
	return nil
}

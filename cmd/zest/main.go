// Command zest is a caching and rate-limiting reverse proxy for OpenAI-compatible chat APIs.
//
//	zest [-config FILE] [-listen ADDR] [-upstream URL] [-record FILE | -replay FILE]
//
// With no -config it reads ./config.toml when present, else runs on built-in defaults.
// ZEST_UPSTREAM_API_KEY (sent upstream instead of the client's token) and ZEST_ADMIN_TOKEN
// (enables the admin API) come from the environment.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"net"
	"os"
	"os/signal"
	"runtime/debug"
	"syscall"
	"time"

	"github.com/zest-proxy/zest/internal/logfmt"
	"github.com/zest-proxy/zest/proxy/h1"
)

// version is set at build time with -ldflags "-X main.version=..."; otherwise it comes from
// the module and VCS build information (see buildVersion).
var version = ""

// buildVersion is the version zest reports: the -ldflags value, else the module version of an
// installed build (go install ...@v1.2.3), else the VCS revision and time a build from a
// checkout records, else "devel".
func buildVersion() string {
	if version != "" {
		return version
	}
	bi, ok := debug.ReadBuildInfo()
	if !ok {
		return "devel"
	}
	if v := bi.Main.Version; v != "" && v != "(devel)" {
		return v
	}
	var rev, at, dirty string
	for _, s := range bi.Settings {
		switch s.Key {
		case "vcs.revision":
			rev = s.Value
		case "vcs.time":
			at = s.Value
		case "vcs.modified":
			if s.Value == "true" {
				dirty = "+dirty"
			}
		}
	}
	if rev == "" {
		return "devel"
	}
	if len(rev) > 12 {
		rev = rev[:12]
	}
	v := "devel-" + rev + dirty
	if at != "" {
		v += " (" + at + ")"
	}
	return v
}

// fixedOverhead is the memory zest needs besides its caches' budgets: the program, the
// embedder's vectors, the WordNet lexicon and the frequency sketch (about 18 MiB live),
// buffers of requests in flight, and the collector's working room.
const fixedOverhead = 64 << 20

// memoryLimit is the Go runtime's soft memory limit zest sets when GOMEMLIMIT is unset: the
// budgets of the caches, half as much again as the collector's working room, plus
// fixedOverhead. Without a limit the heap may reach twice the live data; with one only
// fixedOverhead above full caches, the collector ran back to back and a miss cost three times
// the CPU (README, Memory).
func memoryLimit(cfg Config) int64 {
	var budgets int64
	if cfg.Cache.Enabled {
		budgets += int64(cfg.Cache.MaxBytes)
	}
	if cfg.Semantic.Enabled {
		budgets += int64(cfg.Semantic.MaxBytes)
	}
	return budgets + budgets/2 + fixedOverhead
}

const usageText = `zest is a caching and rate-limiting reverse proxy for OpenAI-compatible chat APIs.
Point an OpenAI SDK's base URL at it (http://127.0.0.1:8080/v1) and change nothing else.

Usage:
  zest [-config FILE] [-listen ADDR] [-upstream URL] [-record FILE | -replay FILE]
  zest -version

Flags (they beat the config file):
`

const envText = `
Environment:
  ZEST_UPSTREAM_API_KEY  sent upstream instead of the client's own credential, which then
                         only identifies the tenant
  ZEST_ADMIN_TOKEN       enables /admin/ (stats, purge) behind this bearer token
  OTEL_*                 standard OpenTelemetry variables configure trace export
  GOMEMLIMIT             the Go runtime's soft memory limit; unset, zest sets it to
                         1.5 × (cache.max_bytes + semantic.max_bytes) + 64MiB

Configuration: config.toml (./config.toml when present, else built-in defaults); every key
and its default is documented in the repository's config.toml.
`

func main() {
	os.Exit(run(context.Background(), os.Args[1:], os.Getenv, os.Stdout, os.Stderr))
}

// run is main without the process: it returns the exit code (2 for bad flags or config).
func run(ctx context.Context, args []string, getenv func(string) string, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("zest", flag.ContinueOnError)
	fs.SetOutput(io.Discard)
	configPath := fs.String("config", "", "config file (default ./config.toml when present)")
	listen := fs.String("listen", "", "listen address, overrides the config's listen")
	upstream := fs.String("upstream", "", "upstream base URL ending in its version path, overrides [upstream] url")
	showVersion := fs.Bool("version", false, "print the version and exit")
	recordFile := fs.String("record", "", "record every clean upstream answer with its timing to `FILE` (JSON Lines, appended)")
	replayFile := fs.String("replay", "", "answer chat completions from the recording `FILE` at its pace, never calling the upstream")
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			fmt.Fprint(stdout, usageText)
			fs.SetOutput(stdout)
			fs.PrintDefaults()
			fmt.Fprint(stdout, envText)
			return 0
		}
		fmt.Fprintf(stderr, "zest: %v (see zest -h)\n", err)
		return 2
	}
	if fs.NArg() > 0 {
		fmt.Fprintf(stderr, "zest: unexpected argument %q (see zest -h)\n", fs.Arg(0))
		return 2
	}
	if *showVersion {
		fmt.Fprintf(stdout, "zest %s\n", buildVersion())
		return 0
	}

	cfg := defaultConfig()
	path := *configPath
	if path == "" {
		if _, err := os.Stat("config.toml"); err == nil {
			path = "config.toml"
		}
	}
	if path != "" {
		var err error
		if cfg, err = loadConfig(path); err != nil {
			fmt.Fprintf(stderr, "zest: config %v\n", err)
			return 2
		}
	}
	if *listen != "" {
		cfg.Listen = *listen
	}
	if *upstream != "" {
		cfg.Upstream.URL = *upstream
	}
	switch {
	case *recordFile != "" && *replayFile != "":
		fmt.Fprintf(stderr, "zest: -record and -replay exclude each other (see zest -h)\n")
		return 2
	case *recordFile != "":
		cfg.Replay.Mode, cfg.Replay.File = "record", *recordFile
	case *replayFile != "":
		cfg.Replay.Mode, cfg.Replay.File = "replay", *replayFile
	}

	logOut := newLogWriter(stderr, 200*time.Millisecond)
	defer logOut.Close()
	logger := newLogger(cfg.Log, logOut)
	if getenv("GOMEMLIMIT") == "" {
		limit := memoryLimit(cfg)
		debug.SetMemoryLimit(limit)
		logger.Debug("soft memory limit set from the cache budgets (GOMEMLIMIT overrides)", "bytes", limit)
	}
	app, err := build(ctx, cfg, getenv, logger)
	if err != nil {
		fmt.Fprintf(stderr, "zest: %v\n", err)
		return 2
	}
	defer app.close()
	// Loading the embedder and the lexicon leaves tens of MiB of garbage (decompression, parsing):
	// give those pages back now rather than when the scavenger gets to them.
	debug.FreeOSMemory()

	ln, err := net.Listen("tcp", cfg.Listen)
	if err != nil {
		fmt.Fprintf(stderr, "zest: listen: %v\n", err)
		return 1
	}
	srv := &h1.Server{
		Handler:           app.handler,
		ReadHeaderTimeout: 10 * time.Second,
		IdleTimeout:       120 * time.Second,
		Logger:            logger,
		// Past the limit a client waits in the kernel's backlog, not in zest's memory.
		MaxConns: cfg.MaxConnections,
	}
	sigCtx, stop := signal.NotifyContext(ctx, os.Interrupt, syscall.SIGTERM)
	defer stop()
	errc := make(chan error, 1)
	go func() { errc <- srv.Serve(ln) }()
	logger.Info("zest listening", "addr", "http://"+ln.Addr().String(), "upstream", cfg.Upstream.URL,
		"version", buildVersion(), "config", path)

	select {
	case err := <-errc:
		fmt.Fprintf(stderr, "zest: serve: %v\n", err)
		return 1
	case <-sigCtx.Done():
	}
	logger.Info("zest shutting down: finishing in-flight requests", "timeout", time.Duration(cfg.ShutdownTimeout))
	shutCtx, cancel := context.WithTimeout(context.Background(), time.Duration(cfg.ShutdownTimeout))
	defer cancel()
	code := 0
	if err := srv.Shutdown(shutCtx); err != nil {
		logger.Warn("shutdown did not finish in time", "error", err)
		code = 1
	} else if err := app.wait(shutCtx); err != nil {
		logger.Warn("answers still being stored at shutdown were dropped", "error", err)
		code = 1
	}
	app.drain() // what is stored is sound even after a timeout: the snapshot keeps it
	return code
}

func newLogger(c LogConfig, w io.Writer) *slog.Logger {
	var level slog.Level
	level.UnmarshalText([]byte(c.Level))
	opts := &slog.HandlerOptions{Level: level}
	if c.Format == "json" {
		return slog.New(slog.NewJSONHandler(w, opts))
	}
	return slog.New(logfmt.NewTextHandler(w, opts))
}

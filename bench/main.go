// Command bench measures zest side by side with the alternatives on the same
// work, on one machine, and writes a Markdown report with SVG charts and a
// JSON file:
//
//	go run ./bench                 # full run, 3 interleaved rounds, ~4 minutes
//	go run ./bench -smoke          # a few seconds, used by CI
//	go run ./bench -scenarios direct,zest-hit -duration 10s
//	go run ./bench -redis 127.0.0.1:6379 -scenarios zest-redis-local-hit,zest-redis-tier-hit
//
// It builds bench/mockupstream, bench/revproxy and cmd/zest into a temporary
// directory and runs them as child processes on loopback ports; nginx
// scenarios run when nginx is installed. With -pin (the default on machines
// with 2+ CPUs and taskset), the servers run on the last CPU and the driver on
// the others. Every scenario runs -rounds times, interleaved (round 1 of every
// scenario, then round 2, ...), and the report shows the medians with the
// min–max spread. See bench/README.md.
package main

import (
	"context"
	"flag"
	"fmt"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"syscall"
	"time"
)

// options are the command-line settings.
type options struct {
	duration  time.Duration
	rounds    int
	rate      float64
	openConns int
	conns     int
	sweep     []int
	names     map[string]bool
	out       string
	smoke     bool
	pin       bool
	zestBin   string
	timeout   time.Duration
	redis     string
}

func main() {
	o, err := parseFlags(os.Args[1:])
	if err != nil {
		fmt.Fprintln(os.Stderr, "bench:", err)
		os.Exit(2)
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	ctx, cancel := context.WithTimeout(ctx, o.timeout)
	defer cancel()
	code, err := run(ctx, o)
	if err != nil {
		fmt.Fprintln(os.Stderr, "bench:", err)
		os.Exit(1)
	}
	os.Exit(code)
}

func parseFlags(args []string) (*options, error) {
	fs := flag.NewFlagSet("bench", flag.ContinueOnError)
	o := &options{}
	canPin := runtime.NumCPU() >= 2
	if _, err := exec.LookPath("taskset"); err != nil {
		canPin = false
	}
	fs.DurationVar(&o.duration, "duration", 3*time.Second, "open-loop duration per scenario and round (closed-loop points take a quarter each; the rate-limit scenario at least 4s)")
	fs.IntVar(&o.rounds, "rounds", 3, "interleaved rounds per scenario; the report shows medians and min–max (default 1 with -smoke)")
	fs.Float64Var(&o.rate, "rate", 500, "open-loop arrival rate, requests per second")
	fs.IntVar(&o.openConns, "open-conns", 16, "connections available to the open-loop phase")
	fs.IntVar(&o.conns, "conns", 50, "closed-loop concurrency of the headline throughput")
	sweep := fs.String("sweep", "1,4,16", "extra closed-loop concurrencies for the throughput chart (comma list, at most 7)")
	scen := fs.String("scenarios", "", "comma list of scenarios to run (default all): "+strings.Join(scenarioNames(), ","))
	fs.StringVar(&o.out, "out", "", "output directory (default bench/results/<timestamp>)")
	fs.BoolVar(&o.smoke, "smoke", false, "a few seconds in total: tiny durations and rates, for CI")
	fs.BoolVar(&o.pin, "pin", canPin, "pin the servers to the last CPU and the driver to the others (needs taskset)")
	fs.StringVar(&o.zestBin, "zest", "", "a prebuilt zest binary (default: go build ./cmd/zest)")
	fs.DurationVar(&o.timeout, "timeout", 15*time.Minute, "abort the whole run after this long")
	fs.StringVar(&o.redis, "redis", "", "host:port of the Redis for the zest-redis-*/zest-limit-redis scenarios (default $"+redisEnvVar+", else 127.0.0.1:6379 when it answers)")
	if err := fs.Parse(args); err != nil {
		return nil, err
	}
	if fs.NArg() > 0 {
		return nil, fmt.Errorf("unexpected arguments %q", fs.Args())
	}
	set := map[string]bool{}
	fs.Visit(func(f *flag.Flag) { set[f.Name] = true })
	if o.smoke {
		o.duration, o.rate, o.openConns, o.conns, *sweep = 400*time.Millisecond, 200, 4, 8, ""
		if !set["rounds"] {
			o.rounds = 1
		}
	}
	if o.duration <= 0 || o.rate <= 0 || o.conns <= 0 || o.openConns <= 0 || o.rounds <= 0 {
		return nil, fmt.Errorf("-duration, -rate, -conns, -open-conns and -rounds must be positive")
	}
	for _, f := range strings.Split(*sweep, ",") {
		if f = strings.TrimSpace(f); f == "" {
			continue
		}
		n, err := strconv.Atoi(f)
		if err != nil || n <= 0 || n > 4096 {
			return nil, fmt.Errorf("bad -sweep entry %q", f)
		}
		if n != o.conns {
			o.sweep = append(o.sweep, n)
		}
	}
	if len(o.sweep) > maxSweep {
		return nil, fmt.Errorf("-sweep lists %d concurrencies besides -conns, at most %d", len(o.sweep), maxSweep)
	}
	o.sweep = append(o.sweep, o.conns)
	known := map[string]bool{}
	for _, n := range scenarioNames() {
		known[n] = true
	}
	if *scen != "" {
		o.names = map[string]bool{}
		for _, n := range strings.Split(*scen, ",") {
			n = strings.TrimSpace(n)
			if !known[n] {
				return nil, fmt.Errorf("unknown scenario %q (have %s)", n, strings.Join(scenarioNames(), ","))
			}
			o.names[n] = true
		}
	}
	if o.out == "" {
		o.out = filepath.Join("bench", "results", time.Now().Format("20060102-150405"))
		if o.smoke {
			o.out = filepath.Join(os.TempDir(), "zest-bench-smoke-"+time.Now().Format("20060102-150405"))
		}
	}
	return o, nil
}

func scenarioNames() []string {
	var out []string
	for _, s := range scenarios() {
		out = append(out, s.name)
	}
	return out
}

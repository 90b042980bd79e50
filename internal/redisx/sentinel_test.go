package redisx_test

import (
	"bufio"
	"context"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"
	"github.com/zest-proxy/zest/internal/redisx"
)

// TestSentinelURL starts a redis-server and a Sentinel watching it on loopback ports, and
// checks that a redis://sentinel?master_name= URL reaches the master through the Sentinel.
// It skips when neither redis-sentinel nor redis-server is installed.
func TestSentinelURL(t *testing.T) {
	server, sentinel := redisBinaries(t)
	dir := t.TempDir()
	masterAddr := startRedis(t, dir, "master", server, nil, func(addr string) []string {
		_, port, _ := net.SplitHostPort(addr)
		return []string{"--port", port, "--bind", "127.0.0.1", "--save", "", "--appendonly", "no"}
	})
	sentinelAddr := startRedis(t, dir, "sentinel", sentinel.bin, sentinel.args, func(addr string) []string {
		_, port, _ := net.SplitHostPort(addr)
		conf := filepath.Join(dir, "sentinel.conf") // Sentinel rewrites its file: it must be writable
		host, mport, _ := net.SplitHostPort(masterAddr)
		body := fmt.Sprintf("port %s\nbind 127.0.0.1\nsentinel monitor zestmaster %s %s 1\nsentinel down-after-milliseconds zestmaster 60000\n",
			port, host, mport)
		if err := os.WriteFile(conf, []byte(body), 0o600); err != nil {
			t.Fatal(err)
		}
		return []string{conf}
	})

	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	c, err := redisx.New(redisx.Options{URL: "redis://" + sentinelAddr + "?master_name=zestmaster", Timeout: 2 * time.Second})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	if err := c.Do(ctx, func(ctx context.Context) error {
		return c.R.Set(ctx, "zest-sentinel-test", "through sentinel", 0).Err()
	}); err != nil {
		t.Fatalf("SET through the sentinel URL: %v", err)
	}
	direct := redis.NewClient(&redis.Options{Addr: masterAddr})
	defer direct.Close()
	if got, err := direct.Get(ctx, "zest-sentinel-test").Result(); err != nil || got != "through sentinel" {
		t.Fatalf("the master holds %q, %v; want the value written through the sentinel", got, err)
	}

	bad, err := redisx.New(redisx.Options{URL: "redis://" + sentinelAddr + "?master_name=nosuchmaster", Timeout: 2 * time.Second})
	if err != nil {
		t.Fatal(err)
	}
	defer bad.Close()
	if err := bad.Ping(ctx); err == nil {
		t.Fatal("a master the sentinel does not watch answered")
	}
}

// sentinelCmd is how to run a Sentinel: its binary and the arguments after the config file.
type sentinelCmd struct {
	bin  string
	args []string
}

// redisBinaries finds redis-server and a way to run Sentinel (redis-sentinel, or redis-server
// --sentinel), or skips.
func redisBinaries(t *testing.T) (string, sentinelCmd) {
	t.Helper()
	server, err := exec.LookPath("redis-server")
	if err != nil {
		t.Skip("redis-server is not installed (apt-get install redis-server): skipping the Sentinel test")
	}
	if s, err := exec.LookPath("redis-sentinel"); err == nil {
		return server, sentinelCmd{bin: s}
	}
	return server, sentinelCmd{bin: server, args: []string{"--sentinel"}}
}

// startRedis starts bin on a free loopback port with the arguments args returns for that
// address (then extra), waits until it answers PING, and stops it when the test ends. Its
// output goes to dir/name.log, shown when it fails to start.
func startRedis(t *testing.T, dir, name, bin string, extra []string, args func(addr string) []string) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	ln.Close()
	logPath := filepath.Join(dir, name+".log")
	logf, err := os.Create(logPath)
	if err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(bin, append(args(addr), extra...)...)
	cmd.Stdout, cmd.Stderr = logf, logf
	if err := cmd.Start(); err != nil {
		logf.Close()
		t.Fatalf("start %s: %v", name, err)
	}
	exited := make(chan error, 1)
	go func() { exited <- cmd.Wait(); logf.Close() }()
	t.Cleanup(func() {
		cmd.Process.Kill()
		<-exited
	})
	c := redis.NewClient(&redis.Options{Addr: addr, MaxRetries: -1})
	defer c.Close()
	deadline := time.Now().Add(10 * time.Second)
	for {
		ctx, cancel := context.WithTimeout(context.Background(), time.Second)
		err := c.Ping(ctx).Err()
		cancel()
		if err == nil {
			return addr
		}
		select {
		case werr := <-exited:
			exited <- werr
			t.Fatalf("%s exited before answering: %v\n%s", name, werr, tailFile(logPath))
		default:
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s did not answer within 10s: %v\n%s", name, err, tailFile(logPath))
		}
		time.Sleep(20 * time.Millisecond) // waiting for a process to listen: nothing to wait on but the port
	}
}

func tailFile(path string) string {
	f, err := os.Open(path)
	if err != nil {
		return ""
	}
	defer f.Close()
	var lines []string
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		lines = append(lines, sc.Text())
		if len(lines) > 20 {
			lines = lines[1:]
		}
	}
	return strings.Join(lines, "\n")
}

package main

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
)

// nginxConf returns an nginx.conf with two servers in front of the mock at
// upstream: a plain proxy_pass on passAddr and a proxy_cache keyed on the
// URI and the POST body on cacheAddr. Everything lives under prefix.
func nginxConf(prefix, upstream, passAddr, cacheAddr string) string {
	r := strings.NewReplacer("PREFIX", prefix, "UPSTREAM", upstream, "PASS", passAddr, "CACHE", cacheAddr)
	return r.Replace(`worker_processes 1;
error_log PREFIX/error.log warn;
pid PREFIX/nginx.pid;
events { worker_connections 4096; multi_accept on; }
http {
    access_log off;
    client_body_temp_path PREFIX/tmp/body;
    proxy_temp_path PREFIX/tmp/proxy;
    fastcgi_temp_path PREFIX/tmp/fastcgi;
    uwsgi_temp_path PREFIX/tmp/uwsgi;
    scgi_temp_path PREFIX/tmp/scgi;
    proxy_cache_path PREFIX/cache levels=1:2 keys_zone=bench:10m max_size=100m inactive=60m use_temp_path=off;
    keepalive_requests 1000000;
    upstream mock {
        server UPSTREAM;
        keepalive 256;
    }
    server {
        listen PASS;
        client_body_buffer_size 1m;
        client_max_body_size 10m;
        location / {
            proxy_pass http://mock;
            proxy_http_version 1.1;
            proxy_set_header Connection "";
        }
    }
    server {
        listen CACHE;
        client_body_buffer_size 1m;
        client_max_body_size 1m;
        location / {
            proxy_pass http://mock;
            proxy_http_version 1.1;
            proxy_set_header Connection "";
            proxy_cache bench;
            proxy_cache_methods POST;
            proxy_cache_key "$request_uri|$request_body";
            proxy_cache_valid 200 10m;
            add_header X-Cache-Status $upstream_cache_status;
        }
    }
}
`)
}

// startNginx writes the config into dir/nginx and starts nginx in the
// foreground. It returns ("", nil) with a reason when nginx is absent.
func startNginx(dir, cpus, upstream, passAddr, cacheAddr string) (*proc, string, error) {
	bin, err := exec.LookPath("nginx")
	if err != nil {
		for _, p := range []string{"/usr/sbin/nginx", "/usr/local/sbin/nginx"} {
			if _, serr := os.Stat(p); serr == nil {
				bin, err = p, nil
			}
		}
	}
	if err != nil {
		return nil, "nginx is not installed (apt-get install nginx)", nil
	}
	prefix := filepath.Join(dir, "nginx")
	// nginx started as root runs its worker as nobody, which must reach
	// the cache and temp directories.
	_ = os.Chmod(dir, 0o755)
	for _, d := range []string{"", "tmp", "cache"} {
		if err := os.MkdirAll(filepath.Join(prefix, d), 0o777); err != nil {
			return nil, "", fmt.Errorf("nginx dirs: %w", err)
		}
		_ = os.Chmod(filepath.Join(prefix, d), 0o777)
	}
	conf := filepath.Join(prefix, "nginx.conf")
	if err := os.WriteFile(conf, []byte(nginxConf(prefix, upstream, passAddr, cacheAddr)), 0o644); err != nil {
		return nil, "", fmt.Errorf("nginx conf: %w", err)
	}
	p, err := startProc(dir, "nginx", cpus, bin, "-p", prefix, "-c", conf, "-e", filepath.Join(prefix, "error.log"), "-g", "daemon off;")
	return p, "", err
}

package report

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"path/filepath"
)

// Files are the names Write creates inside its directory.
var Files = []string{"report.md", "results.json", "latency.svg", "throughput.svg", "ratelimit.svg"}

// Write creates dir and writes the report, the JSON and the charts into it.
func Write(dir string, r *Run) error {
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return fmt.Errorf("report: %w", err)
	}
	writers := map[string]func(io.Writer, *Run) error{
		"report.md":      func(w io.Writer, r *Run) error { WriteMarkdown(w, r); return nil },
		"results.json":   writeJSON,
		"latency.svg":    LatencyChart,
		"throughput.svg": ThroughputChart,
		"ratelimit.svg":  RateLimitChart,
	}
	for _, name := range Files {
		var buf bytes.Buffer
		if err := writers[name](&buf, r); err != nil {
			return fmt.Errorf("report: %s: %w", name, err)
		}
		if err := os.WriteFile(filepath.Join(dir, name), buf.Bytes(), 0o644); err != nil {
			return fmt.Errorf("report: %w", err)
		}
	}
	return nil
}

func writeJSON(w io.Writer, r *Run) error {
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	return enc.Encode(r)
}

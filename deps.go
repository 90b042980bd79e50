//go:build tools

package tools

import (
	_ "github.com/BurntSushi/toml"
	_ "github.com/dgraph-io/ristretto/v2"
	_ "github.com/philippgille/chromem-go"
	_ "github.com/redis/go-redis/v9"
	_ "github.com/tiktoken-go/tokenizer"
	_ "go.opentelemetry.io/otel"
	_ "go.opentelemetry.io/otel/exporters/otlp/otlptrace/otlptracegrpc"
	_ "go.opentelemetry.io/otel/exporters/otlp/otlptrace/otlptracehttp"
	_ "go.opentelemetry.io/otel/sdk"
	_ "go.opentelemetry.io/otel/sdk/metric"
	_ "go.opentelemetry.io/otel/trace"
	_ "golang.org/x/time/rate"
)

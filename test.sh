#!/usr/bin/env bash
# test.sh runs every test zest has, on a fresh machine with Go (and, for the SDK test, Node.js):
#   - go vet and the Go tests under the race detector (unit, integration, fuzz seeds, golden SSE),
#   - the allocation budgets again without it (the hit path, the access line, the upstream
#     send-and-read and idle check, streamed chunks, the word tables),
#   - the official `openai` npm client against a live zest (test/sdk, installed here from its lock file),
#   - a few-second smoke run of the load benchmark (bench/), so the tool cannot rot.
# Tests of the Redis tier read its address from ZEST_TEST_REDIS and skip, saying so, when unset.
set -euo pipefail
cd "$(dirname "$0")"

if command -v npm >/dev/null 2>&1; then
  echo "== npm ci (test/sdk: the official openai client)"
  (cd test/sdk && npm ci --no-audit --no-fund --loglevel=error)
else
  echo "== npm not found: the openai SDK test will be skipped"
fi

echo "== go vet"
go vet ./...

echo "== go test -race"
go test -race -count=1 ./...

echo "== allocation budgets (without the race detector, which changes allocation counts)"
go test -count=1 -run 'Alloc|DoNotAllocate|HandleAttrsFunc|SendReader|ChunkedWrites' ./proxy ./proxy/h1 ./internal/logfmt ./internal/strtab

echo "== bench smoke"
go run ./bench -smoke -out "$(mktemp -d)"

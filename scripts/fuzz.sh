#!/usr/bin/env bash
# Runs every fuzz target for a short time (default 10s each).
# Usage: scripts/fuzz.sh [duration]
set -euo pipefail
cd "$(dirname "$0")/.."
dur=${1:-10s}
for pkg in $(go list ./...); do
  dir=$(go list -f '{{.Dir}}' "$pkg")
  for fn in $(grep -ho '^func Fuzz[A-Za-z0-9_]*' "$dir"/*_test.go 2>/dev/null | sed 's/^func //' | sort -u); do
    echo "fuzz $pkg $fn ($dur)"
    go test -run '^$' -fuzz "^${fn}\$" -fuzztime "$dur" -fuzzminimizetime 2s -parallel 2 "$pkg" >/tmp/fuzz-$fn.log 2>&1 || { cat /tmp/fuzz-$fn.log; exit 1; }
  done
done

#!/usr/bin/env bash
# Installs the official JavaScript Standard Webhooks library the interop
# test verifies pollrelay's signatures with. A failure is a failure: the
# test would otherwise skip and hide a broken interop.
set -euo pipefail
cd "$(dirname "$0")/../testdata/interop"
if ! command -v npm >/dev/null 2>&1; then
  echo "npm not found: install Node.js; the interop test needs it" >&2
  exit 1
fi
if ! npm ci --no-audit --no-fund --silent; then
  echo "npm ci failed in testdata/interop" >&2
  exit 1
fi

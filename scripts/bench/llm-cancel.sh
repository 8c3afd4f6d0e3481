#!/usr/bin/env bash
# llm-cancel: start a slow stream (a token every 100 ms) from dev-llm, cancel it after a few
# deltas, and let the server report when it saw the client disconnect (its monotonic clock,
# the same CLOCK_MONOTONIC as uv_hrtime in the client). N cancels per driver (default 10).
# Last line: llm_cancel_ms=<worst case over all cancels>; target <= 100.
# Usage: scripts/bench.sh llm-cancel [N]
set -euo pipefail
source "$(dirname "$0")/llm-common.inc"
"$bin" --bench-cancel "${1:-10}"

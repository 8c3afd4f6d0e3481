#!/usr/bin/env bash
# llm-overhead: stream N deltas (default 20,000) through each driver from dev-llm, one token
# per millisecond, each token carrying the server's monotonic send time; the client
# subtracts it on delivery (on_delta). Prints p50/p99/max added latency per delta (the whole
# client path: loopback TCP, curl, libuv, parsing, UTF-8 stage, callback) and the client's
# CPU time per 10k deltas. Last line: llm_delta_p99_us=<worst p99 of the two drivers>;
# target <= 500. The machine is shared: figures are noisy; run it on a quiet machine.
# Usage: scripts/bench.sh llm-overhead [N]
set -euo pipefail
source "$(dirname "$0")/llm-common.inc"
echo "build: $build ($(grep -m1 CMAKE_BUILD_TYPE: "$build/CMakeCache.txt" | cut -d= -f2), $(grep -q 'SANITIZE:BOOL=ON' "$build/CMakeCache.txt" && echo ASan+UBSan || echo no sanitizers))"
"$bin" --bench-overhead "${1:-20000}"

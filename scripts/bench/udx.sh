#!/usr/bin/env bash
# UDX throughput: 256 MiB C→C (our dht_udx, release build) and JS→JS (udx-native), two
# processes each on 127.0.0.1. Prints MiB/s and CPU seconds, then
# `udx_throughput_ratio_c_over_js=<x>` last (target ≥ 1.0).
# Usage: scripts/bench.sh udx [MiB (256)] [runs (1)]. Release build in $UDX_BENCH_BUILD_DIR
# (default build/bench-udx). The machine is shared: run sparingly; figures are noisy.
set -euo pipefail
cd "$(dirname "$0")/../.."
build=${UDX_BENCH_BUILD_DIR:-build/bench-udx}
cmake -S . -B "$build" -DCMAKE_BUILD_TYPE=Release -DSANITIZE=OFF -DWERROR=ON >/dev/null
cmake --build "$build" -j2 --target test_dht_udx_uv >/dev/null
exec timeout 900 node tests/interop/udx/bench.js "$build/tests/dht/test_dht_udx_uv" "$@"

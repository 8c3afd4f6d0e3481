#!/usr/bin/env bash
# Bench: median time from client join to connection, C<->C (`dvm-dht serve|connect --topic`,
# release build) vs JS<->JS (hyperswarm, tests/interop/swarm/peer.js), BENCH_RUNS (default 8)
# interleaved repetitions on one loopback @hyperswarm/testnet; each client joins after its
# DHT is bootstrapped and its server has announced. Also the RSS of an idle C peer (announced,
# no connection) and of a connected C client. The machine may be shared: figures are noisy.
# Last line: swarm_connect_ms_ratio_c_over_js=<x>   Env: SWARMDVM_BENCH_BUILD_DIR (build/release)
set -euo pipefail
cd "$(dirname "$0")/../.."
build=${SWARMDVM_BENCH_BUILD_DIR:-build/release}
[[ $build = /* ]] || build=$PWD/$build
runs=${BENCH_RUNS:-8}
if [[ ! -f $build/CMakeCache.txt ]]; then
  cmake -S . -B "$build" -DCMAKE_BUILD_TYPE=Release >/dev/null
fi
log=${TMPDIR:-/tmp}/swarm-bench-build.$$.log
cmake --build "$build" -j2 --target dvm-dht > "$log" 2>&1 || { cat "$log"; rm -f "$log"; exit 1; }
rm -f "$log"
timeout 300 node tests/interop/swarm/bench.js "$build/dht/dvm-dht" "$runs" &
pid=$!
trap 'kill "$pid" 2>/dev/null || true' EXIT INT TERM
wait "$pid"

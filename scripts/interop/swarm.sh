#!/usr/bin/env bash
# Swarm interop: C and JS Hyperswarm peers (`dvm-dht connect|serve --topic`, tests/interop/swarm/peer.js)
# on a loopback @hyperswarm/testnet: NDJSON both ways (JS server <-> C client, C server <->
# JS client, C <-> C), 32 MiB each way hashed on both sides, and a clear failure when nobody
# serves the topic. Last line: "swarm: N passed, N failed". All sockets bind 127.0.0.1;
# children are killed by PID.
set -euo pipefail
cd "$(dirname "$0")/../.."
root=$PWD
build=${SWARMDVM_BUILD_DIR:-$root/build/asan}
# (re)build dvm-dht: a no-op when up to date, never a stale binary
if [[ ! -f $build/CMakeCache.txt ]]; then
  cmake -S . -B "$build" -DCMAKE_BUILD_TYPE=Debug -DSANITIZE=ON -DWERROR=ON >/dev/null
fi
cmake --build "$build" -j2 --target dvm-dht >/dev/null
if [[ ! -d tests/interop/node_modules/hyperdht ]]; then
  echo "swarm: tests/interop/node_modules missing (run scripts/setup.sh)"; echo "swarm: 0 passed, 1 failed"; exit 1
fi
export ASAN_OPTIONS=${ASAN_OPTIONS:-detect_leaks=1}
timeout 170 node tests/interop/swarm/interop.js "$build/dht/dvm-dht" &
pid=$!
trap 'kill "$pid" 2>/dev/null || true' EXIT INT TERM
set +e
wait "$pid"
rc=$?
set -e
trap - EXIT
if [[ $rc -eq 124 ]]; then echo "swarm: 0 passed, 1 failed"; fi
exit $rc

#!/usr/bin/env bash
# DHT interop: dvm-dht nodes and JS hyperdht nodes (@hyperswarm/testnet) on one loopback
# testnet. C announces -> JS lookup; JS announces -> C lookup; JS bootstraps from dvm-dht;
# C bootstraps from a JS testnet; unannounce removes the record. Last line:
# "dht: N passed, N failed". All sockets bind 127.0.0.1; children are killed by PID.
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
  echo "dht: tests/interop/node_modules missing (run scripts/setup.sh)"; echo "dht: 0 passed, 1 failed"; exit 1
fi
export ASAN_OPTIONS=${ASAN_OPTIONS:-detect_leaks=1}
timeout 170 node tests/interop/dht/interop.js "$build/dht/dvm-dht" &
pid=$!
trap 'kill "$pid" 2>/dev/null || true' EXIT INT TERM
set +e
wait "$pid"
rc=$?
set -e
trap - EXIT
if [[ $rc -eq 124 ]]; then echo "dht: 0 passed, 1 failed"; fi
exit $rc

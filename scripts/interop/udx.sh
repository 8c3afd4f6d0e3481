#!/usr/bin/env bash
# UDX interop: our C UDX against udx-native (npm, pinned) on 127.0.0.1.
# C→JS and JS→C streams of 64 MiB (SHA-256 of both ends compared), the same with 3 % loss
# and 3 % reordering injected in both directions by the C socket's impairment hook, END and
# DESTROY seen on both sides, MESSAGE datagrams both ways, first-packet address fixing.
# Uses $SWARMDVM_BUILD_DIR (default build/asan; configured and built if missing).
# Prints "udx: N passed, N failed" last; exits non-zero on failure.
set -euo pipefail
cd "$(dirname "$0")/../.."
root=$PWD
build=${SWARMDVM_BUILD_DIR:-$root/build/asan}
fail() { echo "udx interop: $*" >&2; echo "udx: 0 passed, 1 failed"; exit 1; }
if [[ ! -x $build/tests/dht/test_dht_udx_uv ]]; then
  cmake -S . -B "$build" -DCMAKE_BUILD_TYPE=Debug -DSANITIZE=ON -DWERROR=ON >/dev/null \
    || fail "cmake configure failed"
  cmake --build "$build" -j2 --target test_dht_udx_uv >/dev/null || fail "build failed"
fi
[[ -d tests/interop/node_modules/udx-native ]] || fail "tests/interop/node_modules/udx-native missing (run scripts/setup.sh)"
command -v node >/dev/null || fail "node not found"
# ASan: the interop peer exits through the normal path; leaks would fail it loudly.
export ASAN_OPTIONS=${ASAN_OPTIONS:-detect_leaks=1:abort_on_error=1}
exec timeout 600 node tests/interop/udx/run.js "$build/tests/dht/test_dht_udx_uv" "$@"

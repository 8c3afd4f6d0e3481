# shellcheck shell=bash
# Shared by the interop suites whose driver is a node script that runs dvm-dht against the
# npm oracles (dht.sh, swarm.sh): run_node_suite NAME runs tests/interop/NAME/interop.js with
# the (re)built dvm-dht, bounded to 170 s, and keeps the suite's last line
# "NAME: N passed, N failed" true on a timeout or missing npm packages.
run_node_suite() {
  local name=$1 root build pid rc
  cd "$(dirname "${BASH_SOURCE[0]}")/../.."
  root=$PWD
  build=${SWARMDVM_BUILD_DIR:-$root/build/asan}
  # (re)build dvm-dht: a no-op when up to date, never a stale binary
  if [[ ! -f $build/CMakeCache.txt ]]; then
    cmake -S . -B "$build" -DCMAKE_BUILD_TYPE=Debug -DSANITIZE=ON -DWERROR=ON >/dev/null
  fi
  cmake --build "$build" -j2 --target dvm-dht >/dev/null
  if [[ ! -d tests/interop/node_modules/hyperdht ]]; then
    echo "$name: tests/interop/node_modules missing (run scripts/setup.sh)"
    echo "$name: 0 passed, 1 failed"
    return 1
  fi
  export ASAN_OPTIONS=${ASAN_OPTIONS:-detect_leaks=1}
  timeout 170 node "tests/interop/$name/interop.js" "$build/dht/dvm-dht" &
  pid=$!
  trap 'kill "$pid" 2>/dev/null || true' EXIT INT TERM
  set +e
  wait "$pid"
  rc=$?
  set -e
  trap - EXIT
  if [[ $rc -eq 124 ]]; then echo "$name: 0 passed, 1 failed"; fi
  return $rc
}

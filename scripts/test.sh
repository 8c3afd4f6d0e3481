#!/usr/bin/env bash
# The whole test suite, as CI runs it: setup if needed, a sanitizer build
# (AddressSanitizer + UndefinedBehaviorSanitizer, -Werror), every ctest test, then the
# interop and end-to-end suites that exist. Exits non-zero on any failure.
set -euo pipefail
cd "$(dirname "$0")/.."
root=$PWD

scripts/setup.sh

build=${BUILD_DIR:-build/asan}
cmake -S . -B "$build" -DCMAKE_BUILD_TYPE=Debug -DSANITIZE=ON -DWERROR=ON >/dev/null
cmake --build "$build" -j"$(nproc)"

log=$(mktemp); trap 'rm -f "$log"' EXIT
echo "== unit tests (ctest)"
(cd "$build" && ctest --output-on-failure -j"$(nproc)") | tee "$log"
passed=$(sed -n 's/.*tests passed, \([0-9]*\) tests failed out of \([0-9]*\).*/\2 \1/p' "$log" | awk '{print $1-$2}')
total_pass=${passed:-0}
run_suite() { # kind name
  scripts/$1.sh "$2" | tee "$log"
  local n
  n=$(tail -n 1 "$log" | sed -n 's/.*: \([0-9]*\) passed, 0 failed$/\1/p')
  [[ -n $n ]] || { echo "test.sh: $1 $2 did not end with 'N passed, 0 failed'" >&2; exit 1; }
  total_pass=$((total_pass + n))
}

# Interop and end-to-end suites: each prints "<suite>: N passed, N failed" last.
export SWARMDVM_BUILD_DIR=$root/$build
for suite in $(scripts/interop.sh --list); do
  echo "== interop $suite"
  run_suite interop "$suite"
done
if [[ -x scripts/e2e.sh ]] && scripts/e2e.sh --list >/dev/null 2>&1; then
  for suite in $(scripts/e2e.sh --list); do
    echo "== e2e $suite"
    run_suite e2e "$suite"
  done
fi
echo "test.sh: every suite passed"
echo "total: $total_pass passed, 0 failed"

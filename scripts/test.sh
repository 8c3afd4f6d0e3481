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

echo "== unit tests (ctest)"
(cd "$build" && ctest --output-on-failure -j"$(nproc)")

# Interop and end-to-end suites: each prints "<suite>: N passed, N failed" last.
export SWARMDVM_BUILD_DIR=$root/$build
for suite in $(scripts/interop.sh --list); do
  echo "== interop $suite"
  scripts/interop.sh "$suite"
done
if [[ -x scripts/e2e.sh ]] && scripts/e2e.sh --list >/dev/null 2>&1; then
  for suite in $(scripts/e2e.sh --list); do
    echo "== e2e $suite"
    scripts/e2e.sh "$suite"
  done
fi
echo "test.sh: all suites passed"

#!/usr/bin/env bash
# Build the libFuzzer targets with clang and run one for SECONDS (default 60).
# Usage: scripts/fuzz.sh NAME [SECONDS]   (scripts/fuzz.sh --list shows the names)
# Target NAME is the executable fuzz_NAME; its seed corpus is tests/fuzz/corpus/NAME/.
# Prints "fuzz NAME: ok" last when the run ends without a crash or sanitizer report.
set -euo pipefail
cd "$(dirname "$0")/.."
root=$PWD
build=${FUZZ_BUILD_DIR:-build/fuzz}
if [[ ${1:-} == --list ]]; then
  grep -ho 'NAME fuzz_[a-z0-9_]*' tests/fuzz/*.cmake 2>/dev/null | sed 's/NAME fuzz_//'; exit 0
fi
[[ $# -ge 1 ]] || { echo "usage: scripts/fuzz.sh NAME [SECONDS]" >&2; exit 2; }
name=$1; secs=${2:-60}
[[ $secs =~ ^[0-9]+$ ]] || { echo "fuzz: SECONDS must be a whole number" >&2; exit 2; }
command -v clang >/dev/null || scripts/setup.sh
cmake -S . -B "$build" -DCMAKE_C_COMPILER=clang -DCMAKE_BUILD_TYPE=RelWithDebInfo \
      -DBUILD_FUZZ=ON -DBUILD_TESTING=ON >/dev/null
cmake --build "$build" -j"$(nproc)" --target "fuzz_$name"
work=.fuzz/$name
mkdir -p "$work/corpus" "$work/artifacts"
seeds=()
[[ -d tests/fuzz/corpus/$name ]] && seeds+=("tests/fuzz/corpus/$name")
dict=()
[[ -f tests/fuzz/$name.dict ]] && dict+=("-dict=tests/fuzz/$name.dict")
export ASAN_OPTIONS=abort_on_error=1:detect_leaks=1 UBSAN_OPTIONS=halt_on_error=1:print_stacktrace=1
set +e
"$build/tests/fuzz/fuzz_$name" "$work/corpus" "${seeds[@]}" "${dict[@]}" \
  -max_total_time="$secs" -artifact_prefix="$work/artifacts/" -print_final_stats=1 \
  > "$work/log.txt" 2>&1
rc=$?
set -e
tail -n 12 "$work/log.txt"
if [[ $rc -ne 0 ]]; then
  echo "fuzz $name: FAILED (exit $rc; see $work/log.txt and $work/artifacts/)"
  exit 1
fi
echo "fuzz $name: ok"

#!/usr/bin/env bash
# Bench: 256 MiB over one loopback TCP secret-stream connection, C->C (dht_tcp, release
# build) and JS->JS (@hyperswarm/secret-stream on Node) in the same run, 64 KiB writes.
# Throughput = bytes / receiver time from handshake to end-of-stream; CPU = user+sys seconds
# of each process. BENCH_RUNS (default 5) interleaved C/JS runs; the headline ratio uses
# the medians (best-of and CPU ratios are printed too). The machine may be shared: the
# figures are noisy. Last line: secretstream_throughput_ratio_c_over_js=<x>
# The C side's data frames use libcrypto's ChaCha20/Poly1305 when built with it (dht_ssx.h;
# the run prints which); BENCH_C_CRYPTO=sodium runs it on libsodium's primitives instead.
# Env: BENCH_BYTES (default 268435456), BENCH_CHUNK (65536), BENCH_RUNS (5),
#      BENCH_C_CRYPTO (auto|sodium), SWARMDVM_BENCH_BUILD_DIR (build/release).
set -euo pipefail
cd "$(dirname "$0")/../.."
root=$PWD
build=${SWARMDVM_BENCH_BUILD_DIR:-build/release}
bytes=${BENCH_BYTES:-268435456}
chunk=${BENCH_CHUNK:-65536}
runs=${BENCH_RUNS:-5}
dir=$root/tests/interop/secretstream
if [[ ! -f $build/CMakeCache.txt ]]; then
  cmake -S . -B "$build" -DCMAKE_BUILD_TYPE=Release >/dev/null
fi
cmake --build "$build" -j2 --target sstream_peer > "${TMPDIR:-/tmp}/secretstream-bench-build.$$.log" 2>&1 ||
  { cat "${TMPDIR:-/tmp}/secretstream-bench-build.$$.log"; exit 1; }
rm -f "${TMPDIR:-/tmp}/secretstream-bench-build.$$.log"
peer_c=$build/tests/interop/secretstream/sstream_peer
tmp=$(mktemp -d)
pids=()
cleanup() { for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done; rm -rf "$tmp"; }
trap cleanup EXIT

# run_one IMPL -> prints "mibs cpu_sender cpu_receiver"
run_one() {
  local impl=$1 cmd
  local extra=()
  if [[ $impl == c ]]; then cmd=("$peer_c"); extra=(--crypto "${BENCH_C_CRYPTO:-auto}"); else cmd=(node "$dir/peer.js"); fi
  "${cmd[@]}" listen --bench "$bytes" --chunk "$chunk" --timeout 300 "${extra[@]+"${extra[@]}"}" > "$tmp/l.out" 2> "$tmp/l.err" &
  local lpid=$!; pids+=($lpid)
  local port=""
  for _ in $(seq 1 100); do
    port=$(awk '/^LISTEN /{print $2; exit}' "$tmp/l.out" 2>/dev/null || true)
    [[ -n $port ]] && break
    sleep 0.1
  done
  [[ -n $port ]] || { echo "bench: $impl listener did not start" >&2; exit 1; }
  "${cmd[@]}" connect "$port" --bench "$bytes" --chunk "$chunk" --timeout 300 "${extra[@]+"${extra[@]}"}" > "$tmp/s.out" 2> "$tmp/s.err"
  wait "$lpid"
  local r s
  r=$(grep '^BENCH' "$tmp/l.out"); s=$(grep '^BENCH' "$tmp/s.out")
  [[ $r == *status=ok* && $s == *status=ok* ]] || { echo "bench: $impl run failed: $r / $s" >&2; exit 1; }
  local secs rb cpu_r cpu_s
  secs=$(sed 's/.*seconds=\([^ ]*\).*/\1/' <<<"$r"); rb=$(sed 's/.*bytes=\([^ ]*\).*/\1/' <<<"$r")
  cpu_r=$(sed 's/.*cpu=\([^ ]*\).*/\1/' <<<"$r"); cpu_s=$(sed 's/.*cpu=\([^ ]*\).*/\1/' <<<"$s")
  [[ $rb == "$bytes" ]] || { echo "bench: $impl receiver got $rb of $bytes bytes" >&2; exit 1; }
  [[ $impl != c ]] || sed -n 's/.* crypto=\([a-z]*\).*/\1/p' <<<"$r" > "$tmp/c.crypto"
  awk -v b="$bytes" -v t="$secs" -v cs="$cpu_s" -v cr="$cpu_r" 'BEGIN{printf "%.1f %.3f %.3f\n", b/1048576/t, cs, cr}'
}

median() { sort -n | awk '{a[NR]=$0} END{print a[int((NR+1)/2)]}'; }
best() { sort -n | tail -n 1; }

echo "secretstream bench: $((bytes / 1048576)) MiB per run, ${chunk}-byte writes, loopback TCP, $runs interleaved run(s) each;"
echo "  $(nproc) CPU(s), shared with other work: figures are noisy (load average: $(cut -d' ' -f1-3 /proc/loadavg))"
: > "$tmp/c.runs"; : > "$tmp/js.runs"
for i in $(seq 1 "$runs"); do
  for impl in c js; do
    line=$(run_one "$impl")
    echo "  $impl run $i: $(awk '{printf "%s MiB/s, cpu sender %ss receiver %ss", $1, $2, $3}' <<<"$line")"
    echo "$line" >> "$tmp/$impl.runs"
  done
done
declare -A mib top cpus cpur
for impl in c js; do
  mib[$impl]=$(awk '{print $1}' "$tmp/$impl.runs" | median)
  top[$impl]=$(awk '{print $1}' "$tmp/$impl.runs" | best)
  cpus[$impl]=$(awk '{print $2}' "$tmp/$impl.runs" | median)
  cpur[$impl]=$(awk '{print $3}' "$tmp/$impl.runs" | median)
done
echo "C data-frame primitives: $(cat "$tmp/c.crypto") (dht_ssx.h)"
echo "secretstream_c_mib_per_s=${mib[c]} (best ${top[c]}) cpu_sender_s=${cpus[c]} cpu_receiver_s=${cpur[c]} (medians)"
echo "secretstream_js_mib_per_s=${mib[js]} (best ${top[js]}) cpu_sender_s=${cpus[js]} cpu_receiver_s=${cpur[js]} (medians)"
awk -v c="${cpus[c]}" -v cr="${cpur[c]}" -v j="${cpus[js]}" -v jr="${cpur[js]}" \
  'BEGIN{printf "secretstream_cpu_ratio_js_over_c=%.2f (sender+receiver CPU seconds per 256 MiB)\n", (j+jr)/(c+cr)}'
awk -v c="${top[c]}" -v j="${top[js]}" 'BEGIN{printf "secretstream_best_throughput_ratio_c_over_js=%.2f\n", c/j}'
awk -v c="${mib[c]}" -v j="${mib[js]}" 'BEGIN{printf "secretstream_throughput_ratio_c_over_js=%.2f\n", c/j}'

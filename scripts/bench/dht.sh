#!/usr/bin/env bash
# DHT lookup benchmark: a 100-node JS testnet and a 100-node C network (dvm-dht testnet, one
# process), 50 sequential lookups of one announced topic from an ephemeral client on each.
# Last line: dht_lookup_ms_ratio_c_over_js=<median C / median JS>. Loopback only; figures are
# noisy on a shared machine. Uses a release build (build/release) unless SWARMDVM_BUILD_DIR.
set -euo pipefail
cd "$(dirname "$0")/../.."
root=$PWD
build=${SWARMDVM_BUILD_DIR:-$root/build/release}
# (re)build dvm-dht: a no-op when up to date, never a stale binary
if [[ ! -f $build/CMakeCache.txt ]]; then
  cmake -S . -B "$build" -DCMAKE_BUILD_TYPE=Release >/dev/null
fi
cmake --build "$build" -j2 --target dvm-dht >/dev/null
bin=$build/dht/dvm-dht
nodes=${DHT_BENCH_NODES:-100}
lookups=${DHT_BENCH_LOOKUPS:-50}
tmp=$(mktemp -d)
pid=
jspid=
cleanup() {
  [[ -n $pid ]] && kill "$pid" 2>/dev/null || true
  [[ -n $jspid ]] && kill "$jspid" 2>/dev/null || true
  rm -rf "$tmp"
}
trap cleanup EXIT INT TERM

# JS: testnet process + separate client process (the C side is run the same way)
: >"$tmp/js.out"
node tests/interop/dht/bench.js testnet "$nodes" >"$tmp/js.out" 2>&1 &
jspid=$!
for _ in $(seq 1 600); do grep -q '^rss_kb' "$tmp/js.out" && break; sleep 0.1; done
grep -q '^rss_kb' "$tmp/js.out" || { echo "dht bench: JS testnet did not come up"; exit 1; }
jsport=$(awk '/^js_boot/{print $2}' "$tmp/js.out")
js_rss=$(awk '/^rss_kb/{print $2}' "$tmp/js.out")
js=$(timeout 170 node tests/interop/dht/bench.js client "$jsport" "$lookups")
kill "$jspid" 2>/dev/null || true
wait "$jspid" 2>/dev/null || true
echo "$js rss_per_node_kb $((js_rss / nodes)) (one process, $nodes nodes, ${js_rss} kB)"
js_ms=$(awk '{print $2}' <<<"$js")

: >"$tmp/tn.out"
"$bin" testnet --nodes "$nodes" --host 127.0.0.1 --allow-local --bootstrap none \
  --log-level warn >"$tmp/tn.out" 2>&1 &
pid=$!
for _ in $(seq 1 300); do grep -q '^testnet-ready' "$tmp/tn.out" && break; sleep 0.1; done
grep -q '^testnet-ready' "$tmp/tn.out" || { echo "dht bench: C testnet did not come up"; exit 1; }
port=$(head -1 "$tmp/tn.out" | sed 's/.*://')
rss_kb=$(awk '/VmRSS/{print $2}' /proc/$pid/status)
topic=$(printf 'bench-topic' | sha256sum | cut -c1-64)
seed=$(printf 'bench-seed' | sha256sum | cut -c1-64)
common=(--host 127.0.0.1 --allow-local --bootstrap "127.0.0.1:$port" --log-level warn)
"$bin" announce "$topic" --seed "$seed" "${common[@]}" >/dev/null
"$bin" lookup "$topic" --repeat "$lookups" "${common[@]}" >"$tmp/c.out"
found=$(grep -c '^peer ' "$tmp/c.out" || true)
c_ms=$(awk '/^lookup_ms/{print $2}' "$tmp/c.out" | sort -n | awk '{a[NR]=$1} END{print a[int((NR+1)/2)]}')
c_msgs=$(awk '/^lookup_ms/{s+=$3; n++} END{printf "%.1f", s/n}' "$tmp/c.out")
echo "c_lookup_ms $c_ms $c_msgs rss_per_node_kb $((rss_kb / nodes)) (one process, $nodes nodes, ${rss_kb} kB) records_found=$found/$lookups"
echo "note: medians over $lookups lookups from an ephemeral client in its own process; second field = requests sent per lookup; RSS of the whole testnet process / nodes; loopback, shared 2-core machine (noisy)"
awk -v c="$c_ms" -v j="$js_ms" 'BEGIN{printf "dht_lookup_ms_ratio_c_over_js=%.3f\n", c/j}'

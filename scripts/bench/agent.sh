#!/usr/bin/env bash
# agent bench: N concurrent customers (default 100) against one dvm-agent (release build),
# the dev LLM at fixed pacing (stamped tokens, 30 chunks per job, one every 50 ms) and the
# dev mint; every job paid up front with one real locked Cashu token (prepared beforehand in
# one swap), so no chunk waits for a payment round trip.
# Measures, per chunk, dev LLM send -> agent -> customer receive (CLOCK_MONOTONIC on both
# ends) and reports p50/p99/max, the agent's peak RSS and CPU time. The figure is an upper
# bound of the agent's own overhead: it also contains the loopback HTTP hop (curl; measured
# alone by scripts/bench.sh llm-overhead) and the Node client's decryption. The machine is
# shared by several jobs: figures are noisy.
# Last line: agent_chunk_overhead_p99_us=<x> (target <= 500).
# Usage: scripts/bench.sh agent [N]
set -euo pipefail
cd "$(dirname "$0")/../.."
N=${1:-100}
CHUNKS=30
build=${BENCH_BUILD_DIR:-build/release}
if [[ ! -x $build/agent/dvm-agent ]]; then
  cmake -S . -B "$build" -DCMAKE_BUILD_TYPE=RelWithDebInfo >/dev/null
  cmake --build "$build" -j2 >/dev/null
fi
echo "build: $build ($(grep -m1 CMAKE_BUILD_TYPE: "$build/CMakeCache.txt" | cut -d= -f2))"
T=$(mktemp -d /tmp/bench-agent.XXXXXX)
PIDS=()
cleanup() { for p in "${PIDS[@]}"; do kill "$p" 2>/dev/null || true; done; for p in "${PIDS[@]}"; do wait "$p" 2>/dev/null || true; done; rm -rf "$T"; }
trap cleanup EXIT
wait_line() { local i; for ((i = 0; i < $3 * 20; i++)); do grep -qE "$2" "$1" 2>/dev/null && return 0; sleep 0.05; done; return 1; }
wal() { # PATTERN args: dvm-wallet lingers after its result; stop it once printed
  local pat=$1 i out=$T/wal.out; shift
  : >"$out"
  "$build/cashu/dvm-wallet" "$@" >"$out" 2>"$T/wal.err" &
  local p=$!
  for ((i = 0; i < 1200; i++)); do
    kill -0 $p 2>/dev/null || break
    [[ $(grep -cE "$pat" "$out") -ge ${WANT:-1} ]] && { sleep 0.2; kill $p 2>/dev/null || true; break; }
    sleep 0.05
  done
  wait $p 2>/dev/null || true
  cat "$out"
}
node scripts/dev-mint/dev-mint.mjs --port 0 --state-dir "$T/mint" >"$T/mint.out" 2>&1 &
PIDS+=($!)
node scripts/dev-llm/server.js --port 0 --quiet --parallel 1000 >"$T/llm.out" 2>&1 &
PIDS+=($!)
wait_line "$T/mint.out" 'dev-mint ready' 20
wait_line "$T/llm.out" 'listening' 10
MINT=$(grep -o 'http://127.0.0.1:[0-9]*' "$T/mint.out" | head -1)
LLM=$(grep -o 'http://127.0.0.1:[0-9]*' "$T/llm.out" | head -1)
"$build/agent/dvm-agent" --data-dir "$T/agent" --swarm=false --listen 127.0.0.1:0 --llm-url "$LLM" \
  --mint "$MINT" --max-jobs "$N" --no-llm-check --log-level warn >"$T/agent.out" 2>"$T/agent.err" &
APID=$!
PIDS+=($APID)
wait_line "$T/agent.out" '^listening ' 20
ADDR=$(grep '^listening ' "$T/agent.out" | grep -o '127.0.0.1:[0-9]*')
PK=$("$build/cashu/dvm-wallet" --data-dir "$T/agent" pubkey)
# one token per job worth the whole job (30 chunks at 1 sat), so no chunk waits for a
# payment round trip: what is measured is the streaming path, not the protocol's pauses
need=$N
wal '^mint:' --data-dir "$T/c" --mint "$MINT" mint $((need * CHUNKS)) --no-qr --wait 30 >/dev/null
: >"$T/tokens"
left=$need
while ((left > 0)); do
  c=$((left > 1000 ? 1000 : left))
  WANT=$c wal '^cashu' --data-dir "$T/c" --mint "$MINT" send "$CHUNKS" --count $c --lock "$PK" --locktime 7200 >>"$T/tokens"
  left=$((left - c))
done
echo "tokens prepared: $(grep -c '^cashu' "$T/tokens") locked tokens of $CHUNKS sats (one per job)"
read -r u0 s0 < <(awk '{print $14, $15}' "/proc/$APID/stat")
node tests/interop/agent/bench.js "$ADDR" "$T/tokens" "$N" "$CHUNKS" 50 | tee "$T/bench.out"
read -r u1 s1 < <(awk '{print $14, $15}' "/proc/$APID/stat")
hz=$(getconf CLK_TCK)
rss=$(grep VmHWM "/proc/$APID/status" | awk '{print $2}')
cpu_ms=$(( (u1 + s1 - u0 - s0) * 1000 / hz ))
echo "note: $N customers x $CHUNKS chunks; agent peak RSS ${rss} KiB; agent CPU ${cpu_ms} ms during the run (user+sys); machine shared, figures noisy"
p99=$(grep -o 'p99_us=[0-9]*' "$T/bench.out" | cut -d= -f2)
echo "agent_chunk_overhead_p99_us=${p99}"

#!/usr/bin/env bash
# agent bench: N concurrent customers (default 100) against one dvm-agent (release build),
# a stamped LLM at fixed pacing (60 tokens per job, one every 50 ms: 3 s) and the dev mint;
# every job paid up front with one real locked Cashu token (prepared beforehand in one
# swap), so no chunk waits for a payment round trip.
# Arrival: the customers connect evenly spread over the first ARRIVE_MS (default 1000 ms),
# as independent customers would; each job lasts 3 s, so all N stream at once from t=1 s to
# t=3 s, where most chunks are measured. Every figure (floor, relay, agent) uses the same
# arrival. A second agent run with every customer at t=0 is printed as a stress line
# (agent_sync_start_*): then each LLM token of all N streams is written in the same
# millisecond, and a chunk's latency includes waiting behind up to N-1 others at every hop.
# Everything on the measured path is C:
#   agent_load llm   (tests/interop/agent/agent_load.c) a minimal Ollama-compatible stub in
#                    its own process; each token's text is its CLOCK_MONOTONIC send time,
#                    read right before the write(2) that carries it;
#   dvm-agent        curl -> NDJSON parse -> job -> proto chunk -> secret-stream write;
#   agent_load load  N secret-stream customers on one libuv loop; on receipt (decrypted)
#                    latency = uv_hrtime() - stamp (the same clock).
# Figures (ROUNDS, default 3, interleaved relay/agent rounds; medians over rounds):
#   - harness floor (once, before anything else runs): the same N streams read straight from
#     the stub over HTTP (agent_load floor): stub write, one loopback hop, the receiver.
#   - relay (relay_*): the same customers through `agent_load relay`, the thinnest agent on
#     our transports (raw HTTP client, each token forwarded as a chunk line over dht_tcp at
#     once; no curl, offer, payment, job state or database): two hops, a secret-stream and
#     the customer's decryption, what any agent pays on this machine.
#   - end to end (stub write -> dvm-agent -> customer receive), all chunks: an UPPER BOUND
#     of the agent-added latency (it holds the same hops and harness as the relay); also
#     steady state (seq >= 5), the first chunk of each job and 100 ms windows.
#   - agent-added p99 = end-to-end p99 - relay p99 of the same round (run back to back),
#     median over the rounds (0 if negative): what dvm-agent adds over a relay that only
#     forwards. Quantiles do not subtract exactly; both raw figures are printed next to it.
#   - in-agent path measured inside dvm-agent (on_delta -> line written, no loop queueing).
# Last line: agent_chunk_overhead_p99_us=<agent-added p99> (target <= 500).
# The machine is shared: run under `flock /tmp/swarmdvm-bench.lock`; figures are noisy.
# BENCH_LLM=node uses the Node dev LLM (scripts/dev-llm/server.js) instead of the C stub,
# as a cross-check (its stamp is also taken at write time).
# Usage: scripts/bench.sh agent [N]
set -euo pipefail
cd "$(dirname "$0")/../.."
N=${1:-100}
CHUNKS=${BENCH_CHUNKS:-60}
ARRIVE_MS=${ARRIVE_MS:-1000}
ROUNDS=${ROUNDS:-3}
TOKEN_MS=50
build=${BENCH_BUILD_DIR:-build/release}
LOAD=$build/tests/interop/agent/agent_load
if [[ ! -x $build/agent/dvm-agent || ! -x $LOAD ]]; then
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
if [[ ${BENCH_LLM:-c} == node ]]; then
  node scripts/dev-llm/server.js --port 0 --quiet --parallel 1000 >"$T/llm.out" 2>&1 &
else
  "$LOAD" llm --timeout 1800 >"$T/llm.out" 2>&1 &
fi
LLM_PID=$!
PIDS+=($LLM_PID)
wait_line "$T/llm.out" 'http://127.0.0.1:[0-9]+' 10
LLM=$(grep -o 'http://127.0.0.1:[0-9]*' "$T/llm.out" | head -1)
echo "llm: $(head -1 "$T/llm.out")"
# the baselines first, before the agent and the mint exist (nothing else running)
"$LOAD" floor --llm-url "$LLM" -n "$N" --chunks "$CHUNKS" --token-ms "$TOKEN_MS" --arrive-ms "$ARRIVE_MS" | tee "$T/floor.out"
"$LOAD" relay --llm-url "$LLM" --timeout 600 >"$T/relay.out" 2>&1 &
RPID=$!
PIDS+=($RPID)
wait_line "$T/relay.out" '^listening ' 10
RADDR=$(grep '^listening ' "$T/relay.out" | grep -o '127.0.0.1:[0-9]*' | head -1)
node scripts/dev-mint/dev-mint.mjs --port 0 --state-dir "$T/mint" >"$T/mint.out" 2>&1 &
PIDS+=($!)
wait_line "$T/mint.out" 'dev-mint ready' 20
MINT=$(grep -o 'http://127.0.0.1:[0-9]*' "$T/mint.out" | head -1)
"$build/agent/dvm-agent" --data-dir "$T/agent" --swarm=false --listen 127.0.0.1:0 --llm-url "$LLM" \
  --mint "$MINT" --max-jobs "$N" --no-llm-check --log-level warn >"$T/agent.out" 2>"$T/agent.err" &
APID=$!
PIDS+=($APID)
wait_line "$T/agent.out" '^listening ' 20
ADDR=$(grep '^listening ' "$T/agent.out" | grep -o '127.0.0.1:[0-9]*')
PK=$("$build/cashu/dvm-wallet" --data-dir "$T/agent" pubkey)
# one token per job worth the whole job (30 chunks at 1 sat), so no chunk waits for a
# payment round trip: what is measured is the streaming path, not the protocol's pauses
need=$(((ROUNDS + 1) * N)) # the measured rounds and the synchronized-start run
wal '^mint:' --data-dir "$T/c" --mint "$MINT" mint $((need * CHUNKS)) --no-qr --wait 30 >/dev/null
: >"$T/tokens"
left=$need
while ((left > 0)); do
  c=$((left > 200 ? 200 : left)) # <= 1000 outputs per swap (the dev mint's limit)
  WANT=$c wal '^cashu' --data-dir "$T/c" --mint "$MINT" send "$CHUNKS" --count $c --lock "$PK" --locktime 7200 >>"$T/tokens"
  left=$((left - c))
done
echo "tokens prepared: $(grep -c '^cashu' "$T/tokens") locked tokens of $CHUNKS sats (one per job)"
split -l "$N" -d -a 2 "$T/tokens" "$T/tok."
read -r u0 s0 < <(awk '{print $14, $15}' "/proc/$APID/stat")
lrc=0
: >"$T/rounds"
for ((r = 0; r < ROUNDS; r++)); do
  "$LOAD" load --agent "$RADDR" --prefix relay_ -n "$N" --chunks "$CHUNKS" --token-ms "$TOKEN_MS" \
    --arrive-ms "$ARRIVE_MS" >"$T/relay.$r" 2>&1 || lrc=$?
  "$LOAD" load --agent "$ADDR" --tokens "$(printf '%s/tok.%02d' "$T" "$r")" -n "$N" --chunks "$CHUNKS" \
    --token-ms "$TOKEN_MS" --arrive-ms "$ARRIVE_MS" --windows >"$T/load.$r" 2>"$T/load.err" || lrc=$?
  [[ -s $T/load.err ]] && sed -n 1,10p "$T/load.err" >&2
  rp=$(grep -o '^relay_p99_us=[0-9]*' "$T/relay.$r" | cut -d= -f2)
  ap=$(grep -o '^p99_us=[0-9]*' "$T/load.$r" | cut -d= -f2)
  echo "round $((r + 1)): relay p99 ${rp:-?} us, dvm-agent end to end p99 ${ap:-?} us ($(grep -o '^jobs_done [0-9]* jobs_failed [0-9]*' "$T/load.$r"))"
  echo "${rp:-0} ${ap:-0}" >>"$T/rounds"
  sleep 2 # the agent's claim (1 s after its last job) happens between rounds
done
read -r u1 s1 < <(awk '{print $14, $15}' "/proc/$APID/stat")
echo "--- last round, dvm-agent:"
grep -v '^window_ms' "$T/load.$((ROUNDS - 1))"
grep '^window_ms' "$T/load.$((ROUNDS - 1))" | awk '{printf "%s%s", (NR > 1 ? "; " : "windows p99 (ms: us): "), $2 ": " $6} END {print ""}'
echo "--- last round, relay:"
cat "$T/relay.$((ROUNDS - 1))"
hz=$(getconf CLK_TCK)
rss=$(grep VmHWM "/proc/$APID/status" | awk '{print $2}')
cpu_ms=$(((u1 + s1 - u0 - s0) * 1000 / hz))
# stress: every customer at t=0 (after the claim of the run above, 1 s after its last job)
sleep 2
src=0
"$LOAD" load --agent "$ADDR" --tokens "$(printf '%s/tok.%02d' "$T" "$ROUNDS")" -n "$N" --chunks "$CHUNKS" --token-ms "$TOKEN_MS" \
  --arrive-ms 0 --prefix agent_sync_start_ >"$T/sync.out" 2>"$T/sync.err" || src=$?
grep -E '^agent_sync_start_(latency|steady|first|p99)' "$T/sync.out" || true
[[ $src -eq 0 ]] || { echo "agent: synchronized-start run failed (exit $src)" >&2; sed -n 1,10p "$T/sync.err" >&2; lrc=$src; }
kill -INT "$APID"
wait "$APID" || true
inner=$(grep '^chunk_path_us' "$T/agent.out" || echo "chunk_path_us unavailable")
echo "in-agent path per chunk (on_delta -> line written, no loop queueing): ${inner#chunk_path_us }"
kill -TERM "$LLM_PID" 2>/dev/null || true
wait "$LLM_PID" 2>/dev/null || true
grep '^llm_stub' "$T/llm.out" || true
kill -TERM "$RPID" 2>/dev/null || true
wait "$RPID" 2>/dev/null || true
fp99=$(grep -o '^floor_p99_us=[0-9]*' "$T/floor.out" | cut -d= -f2)
med() { sort -n | awk '{a[NR]=$1} END{print a[int((NR+1)/2)]}'; }
rmed=$(awk '{print $1}' "$T/rounds" | med)
amed=$(awk '{print $2}' "$T/rounds" | med)
added=$(awk '{d = $2 - $1; print (d > 0 ? d : 0)}' "$T/rounds" | med)
echo "note: $N customers x $CHUNKS chunks, arriving over ${ARRIVE_MS} ms, $ROUNDS rounds; agent peak RSS ${rss} KiB; agent CPU ${cpu_ms} ms for the $ROUNDS rounds ($((ROUNDS * N * CHUNKS)) chunks, user+sys); machine shared, figures noisy"
echo "harness floor p99 (one hop, no agent): ${fp99:-?} us"
echo "relay p99 (two hops, forwarding only; median of rounds): ${rmed} us"
echo "agent_end_to_end_p99_us=${amed} (upper bound of the agent-added latency; median of rounds)"
if ((lrc != 0)); then
  echo "agent: a load run failed (exit $lrc): see the lines above" >&2
  exit 1
fi
echo "agent-added p99 = end to end - relay, per round: $(awk '{printf "%s%d", (NR > 1 ? ", " : ""), $2 - $1}' "$T/rounds") us (median, 0 if negative)"
echo "agent_chunk_overhead_p99_us=${added}"

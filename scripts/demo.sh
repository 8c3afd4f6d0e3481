#!/usr/bin/env bash
# The main job on local defaults: a local DHT bootstrap node, the dev mint, the dev LLM
# (canned text, not a model), one provider (dvm-agent, kind 5100, with its QR code) and one
# customer (dvm-customer) funded from the dev mint, who pays per cycle and prints the text.
#
# Usage: scripts/demo.sh [--keep]
#   --keep   leave the network up afterwards and print how to run more customers
#            (stop it with the printed kill command).
# Everything runs on 127.0.0.1 in a temporary directory; only processes started here are
# stopped, by PID. Exit status 0 when the customer got its text and the agent claimed.
#
# The customer finds the agent by Hyperswarm discovery on the kind's topic, through the local
# DHT (a 5-node loopback testnet in one dvm-dht process, --allow-local). DEMO_PEER=1 makes it
# connect over --peer (secret-stream over TCP) instead.
set -euo pipefail
cd "$(dirname "$0")/.."
keep=0
[[ ${1:-} == --keep ]] && keep=1

scripts/setup.sh
build=${BUILD_DIR:-build/release}
cmake -S . -B "$build" -DCMAKE_BUILD_TYPE=RelWithDebInfo >/dev/null
cmake --build "$build" -j"$(nproc)" >/dev/null
echo "demo: built into $build"
AGENT=$PWD/$build/agent/dvm-agent
CUST=$PWD/$build/customer/dvm-customer
WALLET=$PWD/$build/cashu/dvm-wallet
DHT=$PWD/$build/dht/dvm-dht

T=$(mktemp -d /tmp/swarmdvm-demo.XXXXXX)
PIDS=()
cleanup() {
  if [[ $keep == 1 ]]; then return; fi
  for p in "${PIDS[@]}"; do kill "$p" 2>/dev/null || true; done
  for p in "${PIDS[@]}"; do wait "$p" 2>/dev/null || true; done
  rm -rf "$T"
}
trap cleanup EXIT
wait_line() { local i; for ((i = 0; i < $3 * 20; i++)); do grep -qE "$2" "$1" 2>/dev/null && return 0; sleep 0.05; done; return 1; }
die() { echo "demo: $*" >&2; exit 1; }

# 1. a private DHT: bootstrap node + 4 more, on 127.0.0.1
"$DHT" testnet --host 127.0.0.1 --nodes 5 --allow-local --bootstrap none >"$T/dht.out" 2>"$T/dht.err" &
PIDS+=($!)
wait_line "$T/dht.out" '^testnet-ready' 20 || die "dvm-dht did not start: $(cat "$T/dht.err")"
BOOT=$(grep -o 'listening 127.0.0.1:[0-9]*' "$T/dht.out" | head -1 | cut -d' ' -f2)
NET=(--bootstrap "$BOOT" --allow-local --swarm-host 127.0.0.1)
echo "demo: 1. dvm-dht bootstrap node $BOOT (a 5-node local DHT)"

# 2. the dev mint (real Cashu crypto, fake Lightning)
node scripts/dev-mint/dev-mint.mjs --port 0 --state-dir "$T/mint" >"$T/mint.out" 2>"$T/mint.err" &
PIDS+=($!)
wait_line "$T/mint.out" 'dev-mint ready' 20 || die "dev mint did not start: $(cat "$T/mint.err")"
MINT=$(grep -o 'http://127.0.0.1:[0-9]*' "$T/mint.out" | head -1)
echo "demo: 2. dev mint $MINT (fake Lightning: invoices are paid at once)"

# 3. the dev LLM: canned text, NOT a model
node scripts/dev-llm/server.js --port 0 --quiet --tokens 40 --token-ms 30 >"$T/llm.out" 2>&1 &
PIDS+=($!)
wait_line "$T/llm.out" 'listening' 10 || die "dev-llm did not start"
LLM=$(grep -o 'http://127.0.0.1:[0-9]*' "$T/llm.out" | head -1)
echo "demo: 3. dev LLM $LLM — canned text, not a model (use Ollama for real output, see README)"

# 4. the provider, with its join link and QR code
"$AGENT" --agent demo-agent --kind 5100 --data-dir "$T/agent" --listen 127.0.0.1:0 "${NET[@]}" \
  --llm-url "$LLM" --model llama3.2 --mint "$MINT" --qr >"$T/agent.out" 2>"$T/agent.err" &
AGENT_PID=$!
PIDS+=($AGENT_PID)
wait_line "$T/agent.out" '^listening ' 20 || die "dvm-agent did not start: $(cat "$T/agent.err")"
ADDR=$(grep '^listening ' "$T/agent.out" | grep -o '127.0.0.1:[0-9]*')
wait_line "$T/agent.err" 'announced on topic' 20 || die "dvm-agent did not announce: $(tail -3 "$T/agent.err")"
echo "demo: 4. dvm-agent announced on the topic of kind 5100 (also on $ADDR); its join link and QR code:"
sed -n '/^join /,/^listening /p' "$T/agent.out" | grep -v '^listening '

# 5. fund the customer from the dev mint (dvm-wallet lingers on idle HTTP connections after
#    printing its result, so wait for the line and stop it by PID)
wal() {
  local pat=$1 i out=$T/wal.out; shift
  : >"$out"
  "$WALLET" "$@" >"$out" 2>"$T/wal.err" &
  local p=$!
  for ((i = 0; i < 600; i++)); do
    kill -0 $p 2>/dev/null || break
    grep -qE "$pat" "$out" && { sleep 0.1; kill $p 2>/dev/null || true; break; }
    sleep 0.05
  done
  wait $p 2>/dev/null || true
  grep -E "$pat" "$out" || die "dvm-wallet $*: $(cat "$T/wal.err")"
}
wal '^mint:' --data-dir "$T/customer" --mint "$MINT" mint 100 --no-qr --wait 20 >/dev/null
echo "demo: 5. customer wallet funded: $("$WALLET" --data-dir "$T/customer" balance | head -1)"

# 6. the customer: text on stdout, status on stderr
HOW=("${NET[@]}"); HOWS="discovery on the topic (--bootstrap $BOOT)"
if [[ ${DEMO_PEER:-0} == 1 ]]; then HOW=(--peer "$ADDR"); HOWS="--peer $ADDR"; fi
echo "demo: 6. dvm-customer --kind=5100 --budget=50 \"Tell me about peer-to-peer markets\" via $HOWS"
echo "----------------------------------------------------------------------------------------"
set +e
"$CUST" --data-dir "$T/customer" --kind=5100 --budget=50 --mint "$MINT" "${HOW[@]}" \
  "Tell me about peer-to-peer markets" 2>"$T/customer.err"
rc=$?
set -e
echo
echo "----------------------------------------------------------------------------------------"
grep '^\[dvm\]' "$T/customer.err" | sed 's/^/demo: customer: /' || true
[[ $rc -eq 0 ]] || die "dvm-customer exited $rc: $(tail -5 "$T/customer.err")"

# 7. figures: the customer's spend, the provider's earnings once claimed
for ((i = 0; i < 100; i++)); do
  b=$("$WALLET" --data-dir "$T/agent" --json balance)
  [[ $b == *'"incoming":0'* && $b == *'"pending":0'* ]] && break
  sleep 0.1
done
echo "demo: customer wallet: $("$WALLET" --data-dir "$T/customer" --json balance)"
echo "demo: agent wallet:    $("$WALLET" --data-dir "$T/agent" --json balance)"

if [[ $keep == 1 ]]; then
  cat <<EOF
demo: the network stays up (--keep). More customers:
  $CUST --data-dir $T/customer --mint $MINT ${NET[*]} --budget=30 "another prompt"
  $CUST --data-dir $T/customer --mint $MINT --peer $ADDR --budget=30 "over TCP"
  $WALLET --data-dir $T/customer --mint $MINT mint 100 --no-qr     # more sats
  $AGENT --data-dir $T/agent --mint $MINT --stats                  # earnings
Stop everything: kill ${PIDS[*]}; rm -rf $T
EOF
  exit 0
fi
kill -INT "$AGENT_PID"
wait "$AGENT_PID" || die "dvm-agent did not stop cleanly"
echo "demo: agent stopped; its ledger:"
"$AGENT" --data-dir "$T/agent" --mint "$MINT" --stats | sed 's/^/demo:   /'
echo "demo: done"

#!/usr/bin/env bash
# Pipeline delegation end to end on 127.0.0.1 (issue 10): a 5100 agent (text generation), a
# 5302 agent (translation) that buys 5100 per job over P2P (--sub-kind 5100 --sub-peer) and
# runs the text through its own dev LLM in batches, and a customer of 5302. One dev mint; each
# agent has its own dev LLM and data dir. The dev LLMs are test doubles (canned text, no
# model): the "translation" is canned text too; what is tested is the plumbing, the timing
# and the money.
#
# Scenarios:
#   1. stream: the customer's first translated chunk arrives before the 5100 provider's LLM
#      finished streaming (monotonic timestamps logged and compared); the job completes.
#   2. stop:   SIGINT to the customer after its first chunk: the 5100 provider's LLM request is
#      closed within 1 s (dev LLM disconnect time - SIGINT time).
#   3. fail:   the 5100 provider's LLM fails mid-stream: the outer job ends with an error and a
#      partial result (customer exit 7, error event, result event, some output).
#   4. swarm:  a second 5302 agent without --sub-peer finds the 5100 agent on its Hyperswarm
#      topic (private dvm-dht bootstrap node) and completes a job.
#   5. shutdown: SIGTERM to that agent mid-job: the customer gets its result, the 5100 LLM
#      request is closed within 1 s, the agent exits 0.
#   6. money:  customer paid = 5302 agent earned; 5302 agent paid = 5100 agent earned; every
#      wallet balances (nothing lost), no claim left pending; no sanitizer report anywhere.
# Prints "pipeline: N passed, M failed" last.
set -uo pipefail
here=$(cd "$(dirname "$0")/../.." && pwd)
build=${SWARMDVM_BUILD_DIR:-$here/build/asan}
if [[ ! -x $build/agent/dvm-agent || ! -x $build/customer/dvm-customer ]]; then
  cmake -S "$here" -B "$build" -DCMAKE_BUILD_TYPE=Debug -DSANITIZE=ON -DWERROR=ON >/dev/null &&
    cmake --build "$build" -j2 >/dev/null || { echo "pipeline: 0 passed, 1 failed"; exit 1; }
fi
AGENT=$build/agent/dvm-agent
CUST=$build/customer/dvm-customer
WALLET=$build/cashu/dvm-wallet
DHT=$build/dht/dvm-dht
export ASAN_OPTIONS=${ASAN_OPTIONS:-detect_leaks=1}

T=$(mktemp -d /tmp/e2e-pipeline.XXXXXX)
pids=()
cleanup() {
  for f in "$T"/*.pid; do [[ -s $f ]] && kill "$(cat "$f")" 2>/dev/null; done
  for p in "${pids[@]}"; do kill "$p" 2>/dev/null; done
  for p in "${pids[@]}"; do wait "$p" 2>/dev/null; done
  if [[ ${KEEP:-0} == 1 ]]; then echo "pipeline: kept $T" >&2; else rm -rf "$T"; fi
}
trap cleanup EXIT
trap 'exit 130' INT TERM

pass=0 fail=0
ok() { pass=$((pass + 1)); echo "ok   [${SECONDS}s] $*"; }
bad() { fail=$((fail + 1)); echo "FAIL [${SECONDS}s] $*"; }
check() { local what=$1; shift; if "$@"; then ok "$what"; else bad "$what"; fi; }
finish() { echo "pipeline: $pass passed, $fail failed"; [[ $fail -eq 0 && $pass -gt 0 ]]; exit $?; }
now_ms() { date +%s%3N; }

# wait_for FILE REGEX [SECONDS]: print the first match's line
wait_for() {
  local f=$1 re=$2 n=$(( ${3:-20} * 20 ))
  for ((i = 0; i < n; i++)); do
    if [[ -f $f ]] && grep -qE "$re" "$f"; then grep -m1 -E "$re" "$f"; return 0; fi
    sleep 0.05
  done
  return 1
}

# ---- dev mint, dev LLMs -------------------------------------------------------------------
node "$here/scripts/dev-mint/dev-mint.mjs" --port 0 --state-dir "$T/mint" >"$T/mint.out" 2>"$T/mint.err" &
pids+=($!)
MINT=$(wait_for "$T/mint.out" '^dev-mint ready' 20 | awk '{print $3}')
[[ -n $MINT ]] || { bad "dev mint did not start"; cat "$T/mint.err" >&2; finish; }

# inner (5100): paced per request by directives in the prompt; outer (5302): short and fast
node "$here/scripts/dev-llm/server.js" --port 0 --quiet --tokens 40 --token-ms 40 >"$T/llm-in.out" 2>&1 &
pids+=($!)
node "$here/scripts/dev-llm/server.js" --port 0 --quiet --tokens 6 --token-ms 5 --parallel 4 >"$T/llm-out.out" 2>&1 &
pids+=($!)
LLM_IN=$(wait_for "$T/llm-in.out" 'listening on' 20 | sed 's/.*listening on //')
LLM_OUT=$(wait_for "$T/llm-out.out" 'listening on' 20 | sed 's/.*listening on //')
[[ -n $LLM_IN && -n $LLM_OUT ]] || { bad "dev LLMs did not start"; finish; }

# a private DHT bootstrap node (Hyperswarm discovery of the sub-provider, scenario 4)
"$DHT" --host 127.0.0.1 --port 0 --allow-local --bootstrap none --data-dir "$T/dht" >"$T/dht.out" 2>"$T/dht.err" &
pids+=($!)
BOOT=$(wait_for "$T/dht.out" '^listening' 20 | grep -oE '127\.0\.0\.1:[0-9]+' | head -1)
[[ -n $BOOT ]] || { bad "dvm-dht bootstrap node did not start"; cat "$T/dht.err" >&2; finish; }
SW=(--bootstrap "$BOOT" --allow-local --swarm-host 127.0.0.1)

# ---- wallets ------------------------------------------------------------------------------
balance() { # DIR FIELD
  "$WALLET" --data-dir "$1" --json balance 2>/dev/null | node -e \
    'let s="";process.stdin.on("data",d=>s+=d).on("end",()=>{const b=JSON.parse(s);console.log(b[process.argv[1]])})' "$2"
}
total() { # DIR: every state of the wallet summed
  "$WALLET" --data-dir "$1" --json balance 2>/dev/null | node -e \
    'let s="";process.stdin.on("data",d=>s+=d).on("end",()=>{const b=JSON.parse(s);console.log(b.unspent+b.reserved+b.sent+b.incoming+b.pending)})'
}
fund() { # DIR AMOUNT: mint at the dev mint (paid at once). dvm-wallet lingers ~30 s after
  # minting (its loop waits for idle HTTP handles) and its stdout is block-buffered into a
  # file, so watch the balance instead and stop it once the proofs are in its database.
  balance "$1" unspent >/dev/null # creates the wallet files before two processes open them
  "$WALLET" --data-dir "$1" --mint "$MINT" --no-qr --wait 20 mint "$2" >"$1.fund.out" 2>&1 &
  local wp=$! okf=1
  pids+=($wp)
  for ((i = 0; i < 600; i++)); do
    [[ $(balance "$1" unspent) == "$2" ]] && { okf=0; break; }
    kill -0 "$wp" 2>/dev/null || { [[ $(balance "$1" unspent) == "$2" ]] && okf=0; break; }
    sleep 0.05
  done
  kill "$wp" 2>/dev/null; wait "$wp" 2>/dev/null
  return $okf
}
mkdir -p "$T/inner" "$T/outer" "$T/outer2" "$T/cust"
chmod 700 "$T/inner" "$T/outer" "$T/outer2" "$T/cust"
CUST0=800 OUTER0=400 OUTER20=200  # unsent locked micro-tokens stay reserved until their locktime
fund "$T/cust" $CUST0 && fund "$T/outer" $OUTER0 && fund "$T/outer2" $OUTER20 ||
  { bad "funding wallets at the dev mint"; cat "$T"/*.fund.out >&2; finish; }
ok "DHT bootstrap $BOOT, dev mint, two dev LLMs, wallets funded (customer $CUST0, 5302 agents $OUTER0 and $OUTER20)"

# ---- agents -------------------------------------------------------------------------------
"$AGENT" --kind 5100 --agent inner --data-dir "$T/inner" "${SW[@]}" --listen 127.0.0.1:0 \
  --llm-url "$LLM_IN" --mint "$MINT" --sats-per-chunk 1 --chunks-per-payment 10 \
  --payment-timeout 5000 --max-jobs 3 >"$T/inner.out" 2>"$T/inner.err" &
INNER_PID=$!
pids+=($INNER_PID)
INNER=$(wait_for "$T/inner.out" '^listening ' 20 | awk '{print $2}')
[[ -n $INNER ]] || { bad "5100 agent did not start"; cat "$T/inner.err" >&2; finish; }

# SUB_CHANNEL=api is refused with a clear message (before anything is served)
SUB_CHANNEL=api "$AGENT" --kind 5302 --sub-kind 5100 --sub-peer "$INNER" --agent chk --data-dir "$T/chk" --swarm=false \
  --listen 127.0.0.1:0 --llm-url "$LLM_OUT" --mint "$MINT" --no-llm-check >"$T/chk.out" 2>"$T/chk.err"
rc=$?
check "SUB_CHANNEL=api refused (exit $rc: $(head -c 120 "$T/chk.err" | tr '\n' ' '))" \
  bash -c "[[ $rc -eq 2 ]] && grep -q 'SUB_CHANNEL=api' '$T/chk.err'"

"$AGENT" --kind 5302 --agent outer --data-dir "$T/outer" --swarm=false --listen 127.0.0.1:0 \
  --llm-url "$LLM_OUT" --mint "$MINT" --sats-per-chunk 1 --chunks-per-payment 10 \
  --payment-timeout 5000 --max-jobs 3 \
  --sub-kind 5100 --sub-peer "$INNER" --sub-budget 100 --sub-batch-size 60 --max-sats-per-chunk 2 \
  --target-lang French >"$T/outer.out" 2>"$T/outer.err" &
OUTER_PID=$!
pids+=($OUTER_PID)
OUTER=$(wait_for "$T/outer.out" '^listening ' 20 | awk '{print $2}')
[[ -n $OUTER ]] || { bad "5302 pipeline agent did not start"; cat "$T/outer.err" >&2; finish; }
ok "agents up: 5100 on $INNER, 5302 (sub-kind 5100) on $OUTER"

# Run the customer; stdout goes through a stamper that records the monotonic time (ns, the
# clock of the dev LLM's *_ns fields) of the first output byte.
run_customer() { # NAME PROMPT [extra args]
  local name=$1 prompt=$2; shift 2
  ( bash -c 'echo $$ >"$0"; exec "$@"' "$T/$name.pid" "$CUST" --kind 5302 --peer "$OUTER" --budget 100 --max-price 2 --mint "$MINT" \
      --data-dir "$T/cust" --json --idle-timeout 20000 "$@" "$prompt" 2>"$T/$name.err" |
    node -e '
      const fs=require("fs"); let first=false;
      process.stdin.on("data",d=>{ if(!first){ first=true;
        fs.writeFileSync(process.argv[1], String(process.hrtime.bigint())+" "+Date.now()); }
        fs.appendFileSync(process.argv[2], d); });' "$T/$name.first" "$T/$name.txt"
    echo "${PIPESTATUS[0]}" >"$T/$name.rc" ) &
  pids+=($!)
}
llm_record() { # URL TAG -> the JSON record of that tag
  node -e '
    const http=require("http");
    http.get(process.argv[1]+"/_dev/stats?tag="+process.argv[2],r=>{let s="";r.on("data",d=>s+=d).on("end",()=>{
      const j=JSON.parse(s); const recs=Array.isArray(j)?j:(j.requests||[]);
      console.log(JSON.stringify(recs[recs.length-1]||null));});}).on("error",()=>console.log("null"));' "$1" "$2"
}
jget() { node -e 'const o=JSON.parse(process.argv[1]);const v=process.argv[2].split(".").reduce((a,k)=>a==null?a:a[k],o);console.log(v==null?"":v)' "$1" "$2"; }
wait_rc() { # NAME SECONDS
  for ((i = 0; i < $2 * 20; i++)); do [[ -s $T/$1.rc ]] && { cat "$T/$1.rc"; return 0; }; sleep 0.05; done
  echo timeout
}

# ---- 1. streaming through both legs -------------------------------------------------------
wait_for "$T/outer.err" 'LLM ready' 10 >/dev/null
run_customer stream '[[dev:{"tag":"stream","n":50,"token_ms":60}]] Write a story about a lighthouse.' >/dev/null
rc=$(wait_rc stream 60)
rec=$(llm_record "$LLM_IN" stream)
end_ns=$(jget "$rec" end_ns)
first=$(cat "$T/stream.first" 2>/dev/null)
first_ns=${first%% *}
echo "     5100 LLM: started $(jget "$rec" started_ns) ns, ended $end_ns ns ($(jget "$rec" tokens_sent) tokens); customer's first 5302 chunk at ${first_ns:-none} ns"
check "stream: customer completed (exit $rc), output $(wc -c <"$T/stream.txt" 2>/dev/null || echo 0) bytes" \
  bash -c "[[ '$rc' == 0 && -s '$T/stream.txt' ]]"
if [[ -n $first_ns && -n $end_ns ]] && node -e 'process.exit(BigInt(process.argv[1])<BigInt(process.argv[2])?0:1)' "$first_ns" "$end_ns"; then
  ok "stream: first translated chunk $(node -e 'console.log(((BigInt(process.argv[2])-BigInt(process.argv[1]))/1000000n).toString())' "$first_ns" "$end_ns") ms before the sub-provider finished streaming"
else
  bad "stream: first translated chunk did not arrive before the sub-provider finished (first=$first_ns end=$end_ns)"
fi
nbatch=$(node -e '
  const http=require("http");http.get(process.argv[1]+"/_dev/stats",r=>{let s="";r.on("data",d=>s+=d).on("end",()=>{
  const j=JSON.parse(s);const recs=Array.isArray(j)?j:(j.requests||[]);console.log(recs.length)})})' "$LLM_OUT")
check "stream: the 5302 agent ran $nbatch local requests (batches) for one job" bash -c "[[ ${nbatch:-0} -ge 2 ]]"

# ---- 2. outer stop stops the inner job within 1 s ----------------------------------------
run_customer stop '[[dev:{"tag":"stop","n":200,"token_ms":50}]] Write a long story.' >/dev/null
if wait_for "$T/stop.first" '.' 30 >/dev/null; then
  t_int=$(now_ms)
  # the customer wrote its own PID (exec keeps it): signal exactly that process
  cust_pid=$(cat "$T/stop.pid")
  [[ -n $cust_pid ]] && kill -INT "$cust_pid"
  rc=$(wait_rc stop 20)
  rec=$(llm_record "$LLM_IN" stop)
  for ((i = 0; i < 40; i++)); do
    [[ -n $(jget "$rec" disconnect.at_unix_ms) ]] && break
    sleep 0.05; rec=$(llm_record "$LLM_IN" stop)
  done
  at=$(jget "$rec" disconnect.at_unix_ms)
  lat=$(( ${at:-999999999999999} - t_int ))
  echo "     SIGINT at $t_int ms; 5100 LLM request closed at ${at:-never} ms after $(jget "$rec" tokens_sent) tokens"
  check "stop: customer exit $rc (130), the sub-provider's LLM stopped ${lat} ms after the outer stop (<= 1000)" \
    bash -c "[[ '$rc' == 130 && -n '$at' && $lat -le 1000 ]]"
else
  bad "stop: no first chunk within 30 s"
fi

# ---- 3. the sub-provider fails mid-job ---------------------------------------------------
run_customer fail '[[dev:{"tag":"fail","n":60,"token_ms":30,"fault":"error","after":30}]] Write a story.' >/dev/null
rc=$(wait_rc fail 60)
echo "     customer events: $(grep -oE '"event":"(error|result|done)"[^}]*' "$T/fail.err" | tr '\n' ' ' | head -c 400)"
check "fail: outer job ended with an error (exit $rc = 7, error event)" \
  bash -c "[[ '$rc' == 7 ]] && grep -q '\"event\":\"error\"' '$T/fail.err'"
check "fail: partial result delivered ($(wc -c <"$T/fail.txt" 2>/dev/null || echo 0) bytes output, result event)" \
  bash -c "grep -q '\"event\":\"result\"' '$T/fail.err' && [[ -s '$T/fail.txt' ]]"
check "fail: the 5302 agent saw the sub-task fail" grep -q 'sub-task (kind 5100) failed' "$T/outer.err"

# ---- 4. the sub-provider found on its Hyperswarm topic (no --sub-peer) ------------------
"$AGENT" --kind 5302 --agent outer2 --data-dir "$T/outer2" "${SW[@]}" --listen 127.0.0.1:0 \
  --llm-url "$LLM_OUT" --mint "$MINT" --sats-per-chunk 1 --chunks-per-payment 10 \
  --payment-timeout 5000 --max-jobs 3 \
  --sub-kind 5100 --sub-budget 50 --sub-batch-size 60 --max-sats-per-chunk 2 \
  --sub-discover-timeout 20000 >"$T/outer2.out" 2>"$T/outer2.err" &
OUTER2_PID=$!
pids+=($OUTER2_PID)
OUTER2=$(wait_for "$T/outer2.out" '^listening ' 20 | awk '{print $2}')
if [[ -n $OUTER2 ]]; then
  OUTER=$OUTER2 run_customer swarm '[[dev:{"tag":"swarm","n":20,"token_ms":20}]] Write a poem.' >/dev/null
  rc=$(wait_rc swarm 60)
  rec=$(llm_record "$LLM_IN" swarm)
  check "swarm: 5302 agent without --sub-peer found the 5100 agent on its topic; job complete (exit $rc, $(wc -c <"$T/swarm.txt" 2>/dev/null || echo 0) bytes, 5100 LLM sent $(jget "$rec" tokens_sent) tokens)" \
    bash -c "[[ '$rc' == 0 && -s '$T/swarm.txt' && -n '$(jget "$rec" tokens_sent)' ]]"
else
  bad "swarm: the second 5302 agent did not start"; cat "$T/outer2.err" >&2
fi

# ---- 5. shutdown of the pipeline agent mid-job ------------------------------------------
o2rc=
if [[ -n $OUTER2 ]]; then
  OUTER=$OUTER2 run_customer shut '[[dev:{"tag":"shut","n":300,"token_ms":40}]] Write a saga.' >/dev/null
  if wait_for "$T/shut.first" '.' 30 >/dev/null; then
    t_term=$(now_ms)
    kill -TERM "$OUTER2_PID"
    for ((i = 0; i < 400; i++)); do kill -0 "$OUTER2_PID" 2>/dev/null || break; sleep 0.05; done
    wait "$OUTER2_PID"; o2rc=$?
    rc=$(wait_rc shut 20)
    rec=$(llm_record "$LLM_IN" shut)
    at=$(jget "$rec" disconnect.at_unix_ms)
    lat=$(( ${at:-999999999999999} - t_term ))
    check "shutdown: SIGTERM to the 5302 agent mid-job: it exited $o2rc after $(( $(now_ms) - t_term )) ms, the customer got its result (exit $rc, result event), the 5100 LLM stopped after ${lat} ms" \
      bash -c "[[ '$o2rc' == 0 && -n '$at' && $lat -le 1000 ]] && grep -q '\"event\":\"result\"' '$T/shut.err'"
  else
    bad "shutdown: no first chunk within 30 s"
  fi
fi

# ---- 6. money -----------------------------------------------------------------------------
# stop both agents (they claim what they received), then read ledgers and wallets
kill -TERM "$OUTER_PID" "$OUTER2_PID" "$INNER_PID" 2>/dev/null
for p in $OUTER_PID $OUTER2_PID $INNER_PID; do
  for ((i = 0; i < 400; i++)); do kill -0 "$p" 2>/dev/null || break; sleep 0.05; done
done
wait "$OUTER_PID"; orc=$?
[[ -n $o2rc ]] || { wait "$OUTER2_PID"; o2rc=$?; }
wait "$INNER_PID"; irc=$?
check "agents exited cleanly on SIGTERM (5302: $orc and $o2rc, 5100: $irc)" bash -c "[[ $orc == 0 && $o2rc == 0 && $irc == 0 ]]"
stat() { "$AGENT" --agent "$1" --data-dir "$T/$1" --mint "$MINT" --stats 2>/dev/null | awk -v k="$2" '$1==k{print $2}'; }
cust_spent=$(cat "$T"/{stream,stop,fail,swarm,shut}.err | grep -oE '"event":"done"[^}]*"spent":[0-9]+' | grep -oE '"spent":[0-9]+' | cut -d: -f2 | awk '{s+=$1} END{print s+0}')
cust_sent=$(balance "$T/cust" sent)
outer_earned=$(( $(stat outer sats_earned) + $(stat outer2 sats_earned) ))
outer_paid_log=$(cat "$T/outer.err" "$T/outer2.err" | grep -oE 'sub-task ended: .* paid [0-9]+ sats' | grep -oE 'paid [0-9]+' | cut -d' ' -f2 | awk '{s+=$1} END{print s+0}')
outer_sent=$(( $(balance "$T/outer" sent) + $(balance "$T/outer2" sent) ))
inner_earned=$(stat inner sats_earned)
echo "     customer: spent $cust_spent (wallet sent $cust_sent); 5302 agents: earned $outer_earned, paid $outer_paid_log (wallet sent $outer_sent); 5100 agent: earned $inner_earned"
check "money: customer paid ($cust_sent) = 5302 agents earned ($outer_earned) > 0" \
  bash -c "[[ -n '$cust_sent' && '$cust_sent' == '$outer_earned' && '$cust_spent' == '$cust_sent' && $cust_sent -gt 0 ]]"
check "money: 5302 agents paid ($outer_sent) = 5100 agent earned ($inner_earned) > 0" \
  bash -c "[[ -n '$outer_sent' && '$outer_sent' == '$inner_earned' && '$outer_paid_log' == '$outer_sent' && $outer_sent -gt 0 ]]"
ct=$(total "$T/cust"); ot=$(( $(total "$T/outer") + $(total "$T/outer2") )); it=$(total "$T/inner")
opend=$(( $(balance "$T/outer" incoming) + $(balance "$T/outer" pending) + $(balance "$T/outer2" incoming) + $(balance "$T/outer2" pending) ))
ipend=$(( $(balance "$T/inner" incoming) + $(balance "$T/inner" pending) ))
echo "     wallet totals: customer $ct (funded $CUST0), 5302 agents $ot (funded $OUTER0 + $OUTER20 + earned $outer_earned), 5100 agent $it (earned $inner_earned); unclaimed 5302 $opend, 5100 $ipend"
check "money: nothing lost (each wallet = funded + earned; everything claimed)" \
  bash -c "[[ '$ct' == '$CUST0' && '$ot' == '$((OUTER0 + OUTER20 + ${outer_earned:-0}))' && '$it' == '$inner_earned' && $opend == 0 && $ipend == 0 ]]"
san=$(grep -lE 'Sanitizer|runtime error' "$T"/*.err 2>/dev/null | xargs -r -n1 basename | tr '\n' ' ')
check "no sanitizer report from any process${san:+ (see: $san)}" test -z "$san"
finish

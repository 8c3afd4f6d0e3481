#!/usr/bin/env bash
# Cashu interop against the dev mint (cashu-ts mint primitives) and cashu-ts as the reference
# wallet/decoder. Runs the scenario with input_fee_ppk 0 and 100; each ends with a balance check
# (issued − spent at the mint == sats held by the wallets + by cashu-ts).
source "$(dirname "$0")/cashu_lib.bash"

scenario() {
  local fee=$1 M A B C out tok toks ts_held=0 n
  start_mint "f$fee" "$fee"; M=$MINT_URL
  A=a$fee; B=b$fee; C=c$fee
  echo "# input_fee_ppk=$fee mint=$M"

  out=$(w $A mint 200 --mint $M --no-qr)
  check "[$fee] mint 200 via fake Lightning" test "$(echo "$out" | tail -1 | jget amount)" = 200
  check "[$fee] balance after mint" test "$(bal $A $M unspent)" = 200

  # C -> C: send, receive
  tok=$(w $A send 30 --mint $M | jget tokens.0)
  out=$(w $B receive "$tok" --mint $M)
  local f1; f1=$(echo "$out" | jget fee)
  check "[$fee] C send -> C receive (amount = 30 - fee)" test "$(echo "$out" | jget amount)" = $((30 - f1))
  out=$(w $B receive "$tok" --mint $M)
  check "[$fee] replayed token refused (CASHU_EREPLAY)" test "$(echo "$out" | jget error)" = CASHU_EREPLAY
  out=$(w $C receive "$tok" --mint $M)
  check "[$fee] double spend refused by the mint (11001 -> CASHU_ESPENT)" \
    test "$(echo "$out" | jget error)/$(echo "$out" | jget mint_code)" = CASHU_ESPENT/11001

  # C tokens in cashu-ts (v4 short ids, v3), cashu-ts tokens in C (v4 short ids, v3)
  tok=$(w $A send 9 --mint $M | jget tokens.0)
  out=$(node "$TS" decode "$M" "$tok")
  check "[$fee] C cashuB decodes in cashu-ts, short id, DLEQ valid" \
    test "$(echo "$out" | jget amount)/$(echo "$out" | jget dleq_all)/${tok:0:6}" = 9/True/cashuB
  out=$(node "$TS" receive "$M" "$tok")
  local tsr; tsr=$(echo "$out" | jget amount)
  check "[$fee] cashu-ts receives the C token at the mint" test -n "$tsr" -a "$tsr" != 0
  ts_held=$((ts_held + tsr))
  tok=$(w $A send 7 --mint $M --format v3 | jget tokens.0)
  out=$(node "$TS" decode "$M" "$tok")
  check "[$fee] C cashuA decodes in cashu-ts, DLEQ valid" test "$(echo "$out" | jget amount)/$(echo "$out" | jget dleq_all)/${tok:0:6}" = 7/True/cashuA
  out=$(node "$TS" receive "$M" "$tok"); tsr=$(echo "$out" | jget amount); ts_held=$((ts_held + tsr))
  tok=$(node "$TS" mint "$M" 12 | jget token)
  out=$(w $B receive "$tok" --mint $M)
  check "[$fee] cashu-ts cashuB (short ids) received in C" test "$(echo "$out" | jget ok)" = True
  tok=$(node "$TS" mint-v3 "$M" 11 | jget token)
  out=$(w $B receive "$tok" --mint $M)
  check "[$fee] cashu-ts cashuA received in C" test "$(echo "$out" | jget ok)" = True

  # P2PK micro-tokens: prepared in one swap, verified offline, batch-claimed in one swap
  local PB PC s0 s1
  PB=$(w $B pubkey | tr -d '\n'); PB=$("$WALLET" --data-dir "$tmp/$B" pubkey)
  PC=$("$WALLET" --data-dir "$tmp/$C" pubkey)
  s0=$(mint_state $M swaps)
  toks=$(w $A send 4 --count 6 --mint $M --lock $PB --locktime 3600)
  s1=$(mint_state $M swaps)
  check "[$fee] 6 locked micro-tokens prepared in one swap" test "$((s1 - s0))/$(echo "$toks" | python3 -c 'import json,sys;print(len(json.load(sys.stdin)["tokens"]))')" = 1/6
  n=0
  for i in 0 1 2 3 4; do
    tok=$(echo "$toks" | jget tokens.$i)
    [[ $(w $B accept "$tok" --mint $M --require-lock --min-locktime 60 | jget ok) == True ]] && n=$((n+1))
  done
  check "[$fee] 5 locked tokens verified offline (no mint call)" test "$n/$(mint_state $M swaps)" = 5/$s1
  check "[$fee] cashu-ts agrees: locked to receiver, DLEQ valid" \
    test "$(node "$TS" decode "$M" "$(echo "$toks" | jget tokens.0)" "$PB" | jget locked_to_all)" = True
  tok=$(echo "$toks" | jget tokens.0)
  check "[$fee] replayed locked token refused" test "$(w $B accept "$tok" --mint $M --require-lock | jget error)" = CASHU_EREPLAY
  check "[$fee] foreign mint refused" \
    test "$(w $B accept "$(echo "$toks" | jget tokens.5)" --mint $M --accept-mint http://127.0.0.1:1 --require-lock | jget error)" = CASHU_EMINT_NOT_ACCEPTED
  tok=$(w $A send 3 --mint $M --lock $PC --locktime 3600 | jget tokens.0)
  check "[$fee] wrong lock key refused" test "$(w $B accept "$tok" --mint $M --require-lock | jget error)" = CASHU_ENOT_LOCKED
  out=$(w $C accept "$tok" --mint $M --require-lock --min-locktime 7200)
  check "[$fee] locktime too short refused" test "$(echo "$out" | jget error)" = CASHU_ENOT_LOCKED
  out=$(w $C accept "$tok" --mint $M --require-lock --min-locktime 60)
  check "[$fee] ... and accepted by its key holder with a sufficient locktime" test "$(echo "$out" | jget ok)" = True
  tok=$(node "$TS" tamper-dleq "$M" "$(echo "$toks" | jget tokens.5)" | jget token)
  check "[$fee] bad DLEQ refused" test "$(w $B accept "$tok" --mint $M --require-lock | jget error)" = CASHU_EDLEQ
  tok=$(w $A send 2 --mint $M | jget tokens.0)
  check "[$fee] unlocked token refused when a lock is required" test "$(w $B accept "$tok" --mint $M --require-lock | jget error)" = CASHU_ENOT_LOCKED
  check "[$fee] sender takes its unclaimed plain token back" test "$(w $A receive "$tok" --mint $M | jget ok)" = True
  s0=$(mint_state $M swaps)
  out=$(w $B claim --mint $M)
  s1=$(mint_state $M swaps)
  local ppk_fee=$(( (5 * 2 * fee + 999) / 1000 ))   # 5 tokens of 4 = 10 proofs of 2? computed below
  check "[$fee] batch claim of the 5 accepted tokens in one swap" test "$((s1 - s0))/$(echo "$out" | jget ok)" = 1/True
  check "[$fee] claimed = 20 - fee" test "$(echo "$out" | jget amount)" = $((20 - $(echo "$out" | jget fee)))
  out=$(w $C claim --mint $M)
  check "[$fee] second receiver claims its token" test "$(echo "$out" | jget ok)" = True

  # a claim with more locked proofs than one signing slice (CASHU_SIGN_SLICE, 16 per loop
  # turn): 40 one-sat tokens, signed over three turns, still one swap
  local toks40
  toks40=$(w $A send 1 --count 40 --mint $M --lock $PB --locktime 3600)
  n=0
  for i in $(seq 0 39); do
    [[ $(w $B accept "$(echo "$toks40" | jget tokens.$i)" --mint $M --require-lock | jget ok) == True ]] && n=$((n+1))
  done
  s0=$(mint_state $M swaps)
  out=$("$WALLET" --data-dir "$tmp/$B" --json --log-level debug claim --mint $M 2>"$tmp/claim40.err")
  s1=$(mint_state $M swaps)
  check "[$fee] claim of 40 locked proofs in one swap" \
    test "$n/$((s1 - s0))/$(echo "$out" | jget ok)" = 40/1/True
  check "[$fee] ... signed 16 per loop turn: 3 turns" grep -q "claim: 40 inputs signed over 3 loop turn" "$tmp/claim40.err"
  check "[$fee] ... claimed = 40 - fee" test "$(echo "$out" | jget amount)" = $((40 - $(echo "$out" | jget fee)))

  # refund: locked tokens never claimed come back after the locktime (token 5 of the batch)
  toks2=$(w $A send 3 --count 2 --mint $M --lock $PC --locktime 2)
  out=$(w $C accept "$(echo "$toks2" | jget tokens.0)" --mint $M --require-lock)
  w $C claim --mint $M >/dev/null
  out=$(w $A refund --mint $M)
  check "[$fee] refund before the locktime does nothing" test "$(echo "$out" | jget amount)" = 0
  sleep 3
  local before; before=$(bal $A $M unspent)
  out=$(w $A refund --mint $M)
  local rf; rf=$(echo "$out" | jget fee)
  check "[$fee] refund after locktime: the unclaimed token comes back (3 - fee)" \
    test "$(echo "$out" | jget amount)" = $((3 - rf))
  check "[$fee] refunded sats spendable" test "$(bal $A $M unspent)" = $((before + 3 - rf))
  # the last micro-token of the first batch is delivered and claimed late
  out=$(w $B accept "$(echo "$toks" | jget tokens.5)" --mint $M --require-lock)
  w $B claim --mint $M >/dev/null
  w $A check >/dev/null
  check "[$fee] check: every sent token is known claimed ('sent' = 0)" test "$(bal $A $M sent)" = 0

  # melt
  local inv; inv=$(curl -s "$M/dev/invoice?amount=10" | jget request)
  out=$(w $A melt "$inv" --mint $M)
  check "[$fee] melt 10 sat" test "$(echo "$out" | jget amount)/$(echo "$out" | jget ok)" = 10/True
  check "[$fee] melted at the mint" test "$(mint_state $M melted_sats)" = 10

  # balance check: sats in = sats out + sats held
  local out_s held_s=0
  out_s=$(mint_state $M outstanding_sats)
  for x in $A $B $C; do held_s=$((held_s + $(held $x $M))); done
  check "[$fee] balance: mint outstanding $out_s == wallets $held_s + cashu-ts $ts_held" test "$out_s" = $((held_s + ts_held))
  check "[$fee] no pending operation left" test "$(bal $A $M pending)$(bal $B $M pending)$(bal $C $M pending)" = 000
}

limits() {
  local M tok out s0 s1 n=0 PB
  start_mint lim 0 --max-inputs 5 --pay-delay-ms 1500; M=$MINT_URL
  echo "# limits: max inputs 5, invoices paid after 1.5 s, mint=$M"
  out=$(w la mint 8 --mint $M --no-qr)
  check "[lim] mint waits for the (delayed) payment" test "$(echo "$out" | tail -1 | jget amount)/$(echo "$out" | tail -1 | jget state)" = 8/ISSUED
  PB=$("$WALLET" --data-dir "$tmp/lb" pubkey)
  out=$(CASHU_MAX_INPUTS=5 w la send 1 --count 8 --mint $M --lock $PB --locktime 3600)
  check "[lim] a prepare needing more outputs than the mint allows is refused before any request" \
    test "$(echo "$out" | jget error)/$(bal la $M pending)/$(bal la $M unspent)" = COMMON_ETOOBIG/0/8
  for i in 1 2; do
    out=$(CASHU_MAX_INPUTS=5 w la send 1 --count 4 --mint $M --lock $PB --locktime 3600)
    for k in 0 1 2 3; do [[ $(w lb accept "$(echo "$out" | jget tokens.$k)" --mint $M --require-lock | jget ok) == True ]] && n=$((n+1)); done
  done
  check "[lim] 8 locked tokens accepted offline" test $n = 8
  out=$(w lb claim --mint $M)
  check "[lim] claim over the mint's cap: 11014 surfaced, nothing lost" \
    test "$(echo "$out" | jget mint_code)/$(bal lb $M incoming)/$(bal lb $M pending)" = 11014/8/0
  s0=$(mint_state $M swaps)
  out=$(CASHU_MAX_INPUTS=5 w lb claim --mint $M)
  s1=$(mint_state $M swaps)
  check "[lim] claim in batches of the cap (2 swaps, 8 sat)" test "$((s1 - s0))/$(echo "$out" | jget amount)" = 2/8
  CASHU_MAX_INPUTS=5 w la check >/dev/null
  check "[lim] balance: mint outstanding $(mint_state $M outstanding_sats) == wallets $(held_union la lb)" test "$(mint_state $M outstanding_sats)" = "$(held_union la lb)"
}

scenario 0
scenario 100
limits
check "no sanitizer report from any wallet run" sanitizer_clean
echo "cashu: $passed passed, $failed failed"
[[ $failed -eq 0 ]]

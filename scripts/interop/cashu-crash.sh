#!/usr/bin/env bash
# Crash safety: dvm-wallet is SIGKILLed (CASHU_CRASH_AT=<op>:<point>, raised by the wallet
# itself) right after the journal commit ("journal": before the request) and right after the
# mint answered ("response": before the answer is stored), for mint, prepare (swap), receive,
# claim, refund and melt. Then it is restarted (`check`: restore + checkstate) and the totals
# must be exact: the mint's outstanding sats (issued − spent) == what the wallets hold, and no
# operation is left pending. Also mint-side faults: HTTP 500, a hang (client timeout) and a
# connection closed after the swap was applied.
source "$(dirname "$0")/cashu_lib.bash"

start_mint crash 100; M=$MINT_URL
A=a; B=b
PB=$("$WALLET" --data-dir "$tmp/$B" pubkey)

totals_exact() { # name
  local out_s held_s pend=0 x
  w $A check >/dev/null   # the sender learns which of its sent tokens were claimed (NUT-07)
  out_s=$(mint_state $M outstanding_sats)
  held_s=$(held_union $A $B)
  for x in $A $B; do pend=$((pend + $(bal $x $M pending))); done
  check "$1: totals exact (mint outstanding $out_s == wallets $held_s), nothing pending ($pend)" \
    test "$out_s/$pend" = "$held_s/0"
}

# crash NAME WALLET_DIR args...: run with the fault point; must die by SIGKILL; restart with check
crash() {
  local point=$1 d=$2; shift 2
  CASHU_CRASH_AT=$point "$WALLET" --data-dir "$tmp/$d" --json "$@" >"$tmp/out" 2>"$tmp/err"
  local rc=$?
  check "$point: wallet killed at the fault point (exit $rc)" test $rc = 137
  w $d check >"$tmp/check.json"
  check "$point: restart + check succeeds" test "$(jget ok <"$tmp/check.json")" = True
}

w $A mint 500 --mint $M --no-qr >/dev/null
totals_exact "baseline"

# mint
crash mint:journal $A mint 64 --mint $M --no-qr
totals_exact "mint:journal"
crash mint:response $A mint 32 --mint $M --no-qr
totals_exact "mint:response"
check "mint: both interrupted mints recovered (500+64+32 issued)" test "$(mint_state $M minted_sats)" = 596

# prepare (the swap of send)
crash prepare:journal $A send 5 --count 4 --mint $M --lock $PB --locktime 3600
totals_exact "prepare:journal"
crash prepare:response $A send 5 --count 4 --mint $M --lock $PB --locktime 3600
totals_exact "prepare:response"
check "prepare:response: the 4 prepared tokens were recovered as reserved (20 sat)" test "$(bal $A $M reserved)" = 20

# a normal batch for the receiver
toks=$(w $A send 3 --count 4 --mint $M --lock $PB --locktime 3600)
for i in 0 1 2 3; do w $B accept "$(echo "$toks" | jget tokens.$i)" --mint $M --require-lock >/dev/null; done
check "receiver holds 12 sat incoming" test "$(bal $B $M incoming)" = 12

# claim
crash claim:journal $B claim --mint $M
totals_exact "claim:journal"
check "claim:journal: incoming restored (12)" test "$(bal $B $M incoming)" = 12
crash claim:response $B claim --mint $M
w $A check >/dev/null  # sender learns they were claimed
totals_exact "claim:response"
check "claim:response: claimed 12 - fee 1 = 11 spendable" test "$(bal $B $M unspent)/$(bal $B $M incoming)" = 11/0

# receive (online swap of a plain token)
tok=$(w $A send 20 --mint $M | jget tokens.0)
crash receive:journal $B receive "$tok" --mint $M
w $A check >/dev/null
totals_exact "receive:journal"
crash receive:response $B receive "$tok" --mint $M
w $A check >/dev/null
totals_exact "receive:response"

# refund
toks=$(w $A send 4 --count 2 --mint $M --lock $PB --locktime 1)
sleep 2
crash refund:response $A refund --mint $M
totals_exact "refund:response"
check "refund: nothing left sent" test "$(bal $A $M sent)" = 0

# melt: the exact-amount swap, then the melt itself
inv() { curl -s "$M/dev/invoice?amount=$1" | jget request; }
crash swap:response $A melt "$(inv 10)" --mint $M
totals_exact "melt swap:response"
w $A refund --mint $M >/dev/null   # releases the plain reserved melt proofs
crash melt:journal $A melt "$(inv 11)" --mint $M
totals_exact "melt:journal"
check "melt:journal: not paid" test "$(mint_state $M melted_sats)" = 0
crash melt:response $A melt "$(inv 12)" --mint $M
totals_exact "melt:response"
check "melt:response: paid exactly once (12)" test "$(mint_state $M melted_sats)" = 12

# mint-side faults
fault $M close_after_apply /v1/swap
out=$(w $A send 7 --mint $M)
check "connection closed after the swap was applied: token recovered via restore" test "$(echo "$out" | jget ok)" = True
totals_exact "close_after_apply"
fault $M 500 /v1/swap
out=$(w $A send 7 --mint $M)
check "HTTP 500 on swap: reported, inputs back" test "$(echo "$out" | jget ok)/$(bal $A $M pending)" = False/0
totals_exact "500"
fault $M hang /v1/swap
out=$(w $A send 7 --mint $M --timeout 1500)
check "hung swap: timeout reported, resolved (not applied)" test "$(echo "$out" | jget ok)/$(bal $A $M pending)" = False/0
totals_exact "hang"
w $A refund --mint $M >/dev/null
w $B claim --mint $M >/dev/null
totals_exact "final"

# a wallet that gives up (or dies) while waiting for the invoice to be paid keeps the quote
start_mint slow 0 --pay-delay-ms 2500
"$WALLET" --data-dir "$tmp/s" --json mint 16 --mint $MINT_URL --no-qr --wait 1 >"$tmp/out" 2>>"$tmp/stderr.log"
check "mint: gave up waiting (exit 6), quote kept" test $? = 6
sleep 2.5
out=$(w s check)
check "mint: paid later, recovered by check (16 sat)" test "$(echo "$out" | jget recovered)/$(bal s $MINT_URL unspent)" = 1/16

check "no sanitizer report from any wallet run" sanitizer_clean
echo "cashu-crash: $passed passed, $failed failed"
[[ $failed -eq 0 ]]

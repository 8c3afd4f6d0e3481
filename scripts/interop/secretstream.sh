#!/usr/bin/env bash
# Interop: our secret-stream over TCP (dht_tcp, standalone Noise XX) against
# @hyperswarm/secret-stream on 127.0.0.1, both roles, NDJSON both ways (10,000 small lines
# and one 4 MiB line each way), clean close, and a tampered frame rejected by each side.
# Prints "secretstream: N passed, N failed" last; exits non-zero on any failure.
set -uo pipefail
cd "$(dirname "$0")/../.."
root=$PWD
build=${SWARMDVM_BUILD_DIR:-build/asan}
dir=$root/tests/interop/secretstream
peer_c=$build/tests/interop/secretstream/sstream_peer
node_mods=$root/tests/interop/node_modules
[[ -d $node_mods/@hyperswarm/secret-stream ]] || { echo "secretstream: node_modules missing (run scripts/setup.sh)"; echo "secretstream: 0 passed, 1 failed"; exit 1; }
if [[ ! -f $build/CMakeCache.txt ]]; then
  cmake -S . -B "$build" -DCMAKE_BUILD_TYPE=Debug -DSANITIZE=ON -DWERROR=ON >/dev/null || exit 1
fi
# (re)build the C peer so a stale binary is never tested
if ! cmake --build "$build" -j2 --target sstream_peer > /dev/null 2>&1; then
  echo "secretstream: building sstream_peer failed"; echo "secretstream: 0 passed, 1 failed"; exit 1
fi
tmp=$(mktemp -d)
pids=()
cleanup() {
  for p in "${pids[@]}"; do kill "$p" 2>/dev/null; done
  rm -rf "$tmp"
}
trap cleanup EXIT
passed=0; failed=0
ok() { echo "ok   $1"; passed=$((passed + 1)); }
bad() { echo "FAIL $1: $2"; failed=$((failed + 1)); }

C=("$peer_c"); JS=(node "$dir/peer.js")
export ASAN_OPTIONS=detect_leaks=1:abort_on_error=1 UBSAN_OPTIONS=halt_on_error=1:print_stacktrace=1

# start_bg NAME CMD... : run in the background, stdout to $tmp/NAME.out; sets $port.
start_bg() {
  local name=$1; shift
  "$@" > "$tmp/$name.out" 2> "$tmp/$name.err" &
  pids+=($!); last_pid=$!
  port=""
  for _ in $(seq 1 100); do
    port=$(awk '/^LISTEN /{print $2; exit}' "$tmp/$name.out" 2>/dev/null)
    [[ -n $port ]] && return 0
    kill -0 "$last_pid" 2>/dev/null || break
    sleep 0.1
  done
  echo "could not start $name: $(cat "$tmp/$name.err")"; return 1
}
field() { sed -n 's/.*\b'"$2"'=\([^ ]*\).*/\1/p' "$tmp/$1.out" | tail -n 1; }

# exchange NAME LISTENER(c|js) : full NDJSON exchange, the other side connects.
exchange() {
  local name=$1 lside=$2 cside lcmd ccmd
  if [[ $lside == js ]]; then lcmd=("${JS[@]}"); ccmd=("${C[@]}"); cside=c; else lcmd=("${C[@]}"); ccmd=("${JS[@]}"); cside=js; fi
  start_bg "$name.l" "${lcmd[@]}" listen --timeout 60 || { bad "$name" "listener did not start"; return; }
  local lpid=$last_pid
  timeout 90 "${ccmd[@]}" connect "$port" --timeout 60 > "$tmp/$name.c.out" 2> "$tmp/$name.c.err"
  local crc=$?
  wait "$lpid"; local lrc=$?
  local L=$name.l Cn=$name.c why=""
  [[ $crc -eq 0 ]] || why+=" connector exit $crc ($(tail -n 2 "$tmp/$Cn.err" | tr '\n' ' '));"
  [[ $lrc -eq 0 ]] || why+=" listener exit $lrc ($(tail -n 2 "$tmp/$L.err" | tr '\n' ' '));"
  for s in "$L" "$Cn"; do
    [[ $(field "$s" status) == ok ]] || why+=" $s status=$(field "$s" status);"
    [[ $(field "$s" recv_lines) == 10001 ]] || why+=" $s recv_lines=$(field "$s" recv_lines);"
    [[ $(field "$s" small_ok) == 1 ]] || why+=" $s small lines out of order or malformed;"
    [[ $(field "$s" big_ok) == 1 ]] || why+=" $s big line missing;"
  done
  [[ -n $(field "$L" sent_sha) && $(field "$L" sent_sha) == $(field "$Cn" recv_sha) ]] || why+=" listener->connector bytes differ;"
  [[ -n $(field "$Cn" sent_sha) && $(field "$Cn" sent_sha) == $(field "$L" recv_sha) ]] || why+=" connector->listener bytes differ;"
  [[ $(field "$L" sent_bytes) -gt 4194304 ]] || why+=" too few bytes sent;"
  [[ -n $(field "$L" local) && $(field "$L" local) == $(field "$Cn" remote) ]] || why+=" connector saw the wrong public key;"
  [[ -n $(field "$Cn" local) && $(field "$Cn" local) == $(field "$L" remote) ]] || why+=" listener saw the wrong public key;"
  if [[ -z $why ]]; then ok "$name ($cside initiator -> $lside responder, 10001 lines + 4 MiB each way, clean close)"; else bad "$name" "$why"; fi
}

# tamper NAME LISTENER(c|js) DIR OFFSET VICTIM(l|c) : flip a byte of the first data frame.
tamper() {
  local name=$1 lside=$2 way=$3 off=$4 victim=$5 lcmd ccmd
  if [[ $lside == js ]]; then lcmd=("${JS[@]}"); ccmd=("${C[@]}"); else lcmd=("${C[@]}"); ccmd=("${JS[@]}"); fi
  start_bg "$name.l" "${lcmd[@]}" listen --timeout 30 || { bad "$name" "listener did not start"; return; }
  local lpid=$last_pid lport=$port
  start_bg "$name.p" node "$dir/tamper_proxy.js" "$lport" "$way" "$off" || { bad "$name" "proxy did not start"; return; }
  local ppid=$last_pid
  timeout 60 "${ccmd[@]}" connect "$port" --timeout 30 > "$tmp/$name.c.out" 2> "$tmp/$name.c.err"
  wait "$lpid"
  kill "$ppid" 2>/dev/null; wait "$ppid" 2>/dev/null
  local V=$name.$victim vs why=""
  vs=$(field "$V" status)
  local vimpl=$lside; [[ $victim == c ]] && { [[ $lside == js ]] && vimpl=c || vimpl=js; }
  if [[ $vimpl == c ]]; then
    [[ $vs == COMMON_ECRYPTO ]] || why+=" C receiver status=$vs (want COMMON_ECRYPTO);"
  else
    [[ $vs == error:* ]] || why+=" JS receiver status=$vs (want an error);"
  fi
  [[ $(field "$V" recv_bytes) == 0 ]] || why+=" receiver delivered $(field "$V" recv_bytes) bytes;"
  grep -q "flipped byte $off" "$tmp/$name.p.err" || why+=" proxy did not tamper;"
  if [[ -z $why ]]; then ok "$name (tampered frame rejected by the $vimpl side: $vs)"; else bad "$name" "$why"; fi
}

# keepalive: the C side stays idle for 5.6 s after the handshake, so it must send one
# encrypted empty frame (5 s of write idleness); the JS side (keepAlive 5000) reads it as
# 17 raw bytes and drops it. Both sides then exchange 10 lines and close cleanly.
keepalive() {
  local name=keepalive
  start_bg "$name.l" "${JS[@]}" listen --small 10 --big 0 --timeout 30 || { bad "$name" "listener did not start"; return; }
  local lpid=$last_pid
  timeout 60 "${C[@]}" connect "$port" --small 10 --big 0 --idle 5600 --timeout 30 > "$tmp/$name.c.out" 2> "$tmp/$name.c.err"
  local crc=$?
  wait "$lpid"
  local why="" sent raw extra
  [[ $crc -eq 0 && $(field "$name.c" status) == ok && $(field "$name.l" status) == ok ]] || why+=" status c=$(field "$name.c" status) js=$(field "$name.l" status);"
  [[ $(field "$name.l" recv_lines) == 10 && $(field "$name.c" recv_lines) == 10 ]] || why+=" lines c=$(field "$name.c" recv_lines) js=$(field "$name.l" recv_lines);"
  [[ $(field "$name.c" sent_sha) == $(field "$name.l" recv_sha) ]] || why+=" bytes differ (an empty frame was delivered as data?);"
  sent=$(field "$name.c" sent_bytes); raw=$(field "$name.l" raw_read)
  extra=$(( ${raw:-0} - ${sent:-0} - 10 * 17 ))
  [[ $extra -ge 17 && $(( extra % 17 )) -eq 0 ]] || why+=" no keep-alive frame seen (raw_read=$raw sent=$sent);"
  if [[ -z $why ]]; then ok "$name (C sent $(( extra / 17 )) keep-alive frame(s) after 5 s idle; JS dropped them)"; else bad "$name" "$why"; fi
}

exchange c_to_js js
exchange js_to_c c
# Wire offsets of the first data frame: initiator->responder after msg1 (3+32), msg3 (3+64)
# and the header (3+56) = 161; responder->initiator after msg2 (3+96) and the header = 158.
# +7 lands inside the ciphertext.
tamper tamper_c_initiator_to_js js up 168 l
tamper tamper_js_responder_to_c js down 165 c
tamper tamper_js_initiator_to_c c up 168 l
tamper tamper_c_responder_to_js c down 165 c
keepalive

echo "secretstream: $passed passed, $failed failed"
[[ $failed -eq 0 ]]

#!/usr/bin/env bash
# NAT interop (needs root; CI runs as root): network namespaces with iptables MASQUERADE put peers behind
# separate NATs; a JS hyperdht testnet runs "outside" on 198.51.100.1. Checks: C<->C and C<->JS
# connect via holepunching through two consistent NATs; two C peers behind one NAT connect
# over their LAN addresses (no hairpin needed); a C client behind a random-port NAT
# (MASQUERADE --random-fully) fails with a clear reason within 30 s. Only namespaces this
# script creates are used, and they are deleted on exit. Last line: "nat: N passed, N failed".
set -euo pipefail
cd "$(dirname "$0")/../.."
root=$PWD
build=${SWARMDVM_BUILD_DIR:-$root/build/asan}
[[ $build = /* ]] || build=$root/$build
if [[ $(id -u) -ne 0 ]]; then echo "nat: needs root"; echo "nat: 0 passed, 1 failed"; exit 1; fi
if [[ ! -f $build/CMakeCache.txt ]]; then
  cmake -S . -B "$build" -DCMAKE_BUILD_TYPE=Debug -DSANITIZE=ON -DWERROR=ON >/dev/null
fi
cmake --build "$build" -j2 --target dvm-dht >/dev/null
bin=$build/dht/dvm-dht
js=$root/tests/interop/swarm
sfx=$(( $$ % 100000 ))
pre=swn$sfx
tmp=$(mktemp -d "${TMPDIR:-/tmp}/swarm-nat.XXXXXX")
pids=()
nss=()
cleanup() {
  for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done
  sleep 0.2
  for p in "${pids[@]}"; do kill -9 "$p" 2>/dev/null || true; done
  for n in "${nss[@]}"; do ip netns pids "$n" 2>/dev/null | xargs -r kill -9 2>/dev/null || true; ip netns del "$n" 2>/dev/null || true; done
  rm -rf "$tmp"
}
trap cleanup EXIT INT TERM
pass=0; fail=0
ok() { if [[ $2 -eq 0 ]]; then pass=$((pass+1)); echo "ok   $1"; else fail=$((fail+1)); echo "FAIL $1${3:+: $3}"; fi; }

mkns() { ip netns add "$1"; nss+=("$1"); ip -n "$1" link set lo up; }
pub=$pre-pub
mkns "$pub"
ip -n "$pub" link add br0 type bridge
ip -n "$pub" addr add 198.51.100.1/24 dev br0
ip -n "$pub" link set br0 up
# nat_i: outside 198.51.100.1i, inside 10.i.0.1; peer_i: 10.i.0.2
for i in 1 2 3; do
  nat=$pre-nat$i; peer=$pre-peer$i
  mkns "$nat"; mkns "$peer"
  ip link add "${pre}o$i" type veth peer name "${pre}b$i"
  ip link set "${pre}o$i" netns "$nat"; ip link set "${pre}b$i" netns "$pub"
  ip -n "$pub" link set "${pre}b$i" master br0 up
  ip -n "$nat" addr add "198.51.100.1$i/24" dev "${pre}o$i"; ip -n "$nat" link set "${pre}o$i" up
  ip link add "${pre}i$i" type veth peer name "${pre}p$i"
  ip link set "${pre}i$i" netns "$nat"; ip link set "${pre}p$i" netns "$peer"
  ip -n "$nat" addr add "10.$i.0.1/24" dev "${pre}i$i"; ip -n "$nat" link set "${pre}i$i" up
  ip -n "$peer" addr add "10.$i.0.2/24" dev "${pre}p$i"; ip -n "$peer" link set "${pre}p$i" up
  ip -n "$peer" route add default via "10.$i.0.1"
  ip netns exec "$nat" sysctl -qw net.ipv4.ip_forward=1
  # a home router: unsolicited inbound traffic to the router itself is dropped (INPUT, so
  # no conntrack entry is confirmed for it and the NAT mapping stays consistent)
  ip netns exec "$nat" iptables -A INPUT -i "${pre}o$i" -m conntrack --ctstate NEW,INVALID -j DROP
  if [[ $i -eq 3 ]]; then
    ip netns exec "$nat" iptables -t nat -A POSTROUTING -o "${pre}o$i" -j MASQUERADE --random-fully
  else
    ip netns exec "$nat" iptables -t nat -A POSTROUTING -o "${pre}o$i" -j MASQUERADE
  fi
done

# a second LAN behind NAT 1 (same public address as peer 1): peer 4 at 10.11.0.2
mkns "$pre-peer4"
ip link add "${pre}j1" type veth peer name "${pre}q1"
ip link set "${pre}j1" netns "$pre-nat1"; ip link set "${pre}q1" netns "$pre-peer4"
ip -n "$pre-nat1" addr add 10.11.0.1/24 dev "${pre}j1"; ip -n "$pre-nat1" link set "${pre}j1" up
ip -n "$pre-peer4" addr add 10.11.0.2/24 dev "${pre}q1"; ip -n "$pre-peer4" link set "${pre}q1" up
ip -n "$pre-peer4" route add default via 10.11.0.1

ip netns exec "$pub" node "$js/testnet.js" 10 198.51.100.1 > "$tmp/testnet.out" 2>&1 < /dev/zero &
pids+=($!)
for _ in $(seq 1 100); do grep -q bootstrap "$tmp/testnet.out" && break; sleep 0.1; done
boot=$(awk '/bootstrap/{print $2}' "$tmp/testnet.out")
[[ -n $boot ]] || { echo "nat: testnet did not start"; cat "$tmp/testnet.out"; echo "nat: 0 passed, 1 failed"; exit 1; }

# run_pair NAME SRV_KIND SRV_NS CLI_KIND CLI_NS  -> both exchange one NDJSON line each way
run_pair() {
  local name=$1 sk=$2 sn=$3 ck=$4 cn=$5
  local topic; topic=$(od -An -N32 -tx1 /dev/urandom | tr -d ' \n')
  local shost chost
  shost=10.${sn: -1}.0.2; chost=10.${cn: -1}.0.2
  [[ $cn == *peer4 ]] && chost=10.11.0.2
  printf '{"from":"server","name":"%s"}\n' "$name" > "$tmp/s.in"
  printf '{"from":"client","name":"%s"}\n' "$name" > "$tmp/c.in"
  if [[ $sk == c ]]; then
    ip netns exec "$sn" "$bin" serve --topic "$topic" --bootstrap "$boot" --host "$shost" --timeout 40000 --log-level debug < "$tmp/s.in" > "$tmp/s.out" 2> "$tmp/s.err" &
  else
    ip netns exec "$sn" env PEER_HOST="$shost" PEER_TIMEOUT_MS=40000 node "$js/peer.js" serve "$topic" "$boot" < "$tmp/s.in" > "$tmp/s.out" 2> "$tmp/s.err" &
  fi
  local sp=$!; pids+=($sp)
  for _ in $(seq 1 200); do grep -q "announced" "$tmp/s.err" && break; sleep 0.1; done
  local t0=$SECONDS
  if [[ $ck == c ]]; then
    ip netns exec "$cn" "$bin" connect --topic "$topic" --bootstrap "$boot" --host "$chost" --timeout 30000 --log-level debug < "$tmp/c.in" > "$tmp/c.out" 2> "$tmp/c.err" &
  else
    ip netns exec "$cn" env PEER_HOST="$chost" PEER_TIMEOUT_MS=30000 node "$js/peer.js" connect "$topic" "$boot" < "$tmp/c.in" > "$tmp/c.out" 2> "$tmp/c.err" &
  fi
  local cp=$!; pids+=($cp)
  local crc=0 src=0
  if [[ ${6:-} == expect-fail ]]; then
    # the first failure report must come within 30 s, with a reason, and no connection
    local t1=$SECONDS
    while kill -0 "$cp" 2>/dev/null && ! grep -q "^error" "$tmp/c.err" && (( SECONDS - t1 < 35 )); do sleep 0.2; done
    local dt=$((SECONDS - t1))
    kill "$cp" "$sp" 2>/dev/null || true
    wait "$cp" 2>/dev/null || true; wait "$sp" 2>/dev/null || true
    local why; why=$(grep -m1 "^error" "$tmp/c.err" || true)
    if [[ -n $why && $dt -le 30 ]] && ! grep -q "^connected" "$tmp/c.err"; then
      ok "$name fails clearly within 30 s (${dt}s: ${why#error * })" 0
    else
      ok "$name fails clearly within 30 s" 1 "$(tail -8 "$tmp/c.err")"
    fi
    return 0
  fi
  wait "$cp" || crc=$?
  # the server exits once its connection closed; give it 5 s (no timer subshell: it would
  # inherit the EXIT trap)
  local t2=$SECONDS
  while kill -0 "$sp" 2>/dev/null && (( SECONDS - t2 < 5 )); do sleep 0.1; done
  kill "$sp" 2>/dev/null || true
  wait "$sp" || src=$?
  local dt=$((SECONDS - t0))
  # proof that the path was punched: the C client saw a probe on its punch socket, or the
  # C server answered a punch round (the JS side logs nothing)
  local punched=1
  if [[ ${6:-} == lan ]]; then
    grep -q "LAN address answered" "$tmp/c.err" || punched=0
  else
    if [[ $ck == c ]]; then grep -q "holepunch: probe from" "$tmp/c.err" || punched=0; fi
    if [[ $sk == c ]]; then grep -q "holepunch round 1 from client: .* punching 1" "$tmp/s.err" || punched=0; fi
  fi
  if [[ $punched -eq 1 && $crc -eq 0 && $src -eq 0 ]] && cmp -s "$tmp/s.out" "$tmp/c.in" && cmp -s "$tmp/c.out" "$tmp/s.in"; then
    ok "$name (${dt}s)" 0
  else
    ok "$name (${dt}s)" 1 "client rc $crc server rc $src
--- server stderr
$(grep -v '^$' "$tmp/s.err" | tail -15)
--- client stderr
$(grep -v '^$' "$tmp/c.err" | tail -15)"
  fi
}

run_pair "C server (NAT 1) <-> C client (NAT 2) via holepunch" c "$pre-peer1" c "$pre-peer2"
run_pair "JS server (NAT 1) <-> C client (NAT 2) via holepunch" js "$pre-peer1" c "$pre-peer2"
run_pair "C server (NAT 1) <-> JS client (NAT 2) via holepunch" c "$pre-peer1" js "$pre-peer2"
run_pair "C server <-> C client behind the same NAT (LAN address)" c "$pre-peer1" c "$pre-peer4" lan
run_pair "C client behind a random-port NAT" c "$pre-peer1" c "$pre-peer3" expect-fail
echo "nat: $pass passed, $fail failed"
[[ $fail -eq 0 ]]

#!/usr/bin/env bash
# Offline verification speed: 2,000 P2PK-locked proofs (one per token, as micro-payments are
# sent), each decoded (cashuB, short keyset id resolved), DLEQ-verified and checked to be locked
# to the receiver with enough locktime — in C (dvm-wallet verify, Release build) and in cashu-ts
# (getDecodedToken + hasValidDleq + parseP2PKSecret) on the same tokens.
# Last line: token_verify_ratio_c_over_js=<proofs/s in C ÷ proofs/s in JS>.
# Figures are noisy on a shared 2-core machine.
set -uo pipefail
root=$(cd "$(dirname "$0")/../.." && pwd)
build=${SWARMDVM_BENCH_BUILD_DIR:-$root/build/release}
[[ $build = /* ]] || build=$root/$build
N=${CASHU_BENCH_PROOFS:-2000}
if [[ ! -x $build/cashu/dvm-wallet ]]; then
  echo "building $build (Release)..."
  cmake -S "$root" -B "$build" -DCMAKE_BUILD_TYPE=Release >/dev/null && cmake --build "$build" -j2 --target dvm-wallet >/dev/null \
    || { echo "verify: build failed"; exit 1; }
fi
WALLET=$build/cashu/dvm-wallet
TS=$root/tests/interop/cashu/ts.mjs
tmp=$(mktemp -d "${TMPDIR:-/tmp}/cashu-bench.XXXXXX")
mint_pid=
cleanup() { [[ -n $mint_pid ]] && kill "$mint_pid" 2>/dev/null && wait "$mint_pid" 2>/dev/null; rm -rf "$tmp"; }
trap cleanup EXIT
node "$root/scripts/dev-mint/dev-mint.mjs" --port 0 --fee-ppk 0 --state-dir "$tmp/mint" --url-file "$tmp/url" >"$tmp/mint.log" 2>&1 &
mint_pid=$!
for _ in $(seq 1 100); do [[ -s $tmp/url ]] && break; sleep 0.1; done
M=$(cat "$tmp/url")
w() { local d=$1; shift; "$WALLET" --data-dir "$tmp/$d" --json "$@"; }
w A mint $((N + 100)) --mint "$M" --no-qr >/dev/null || { echo "verify: mint failed"; exit 1; }
PB=$("$WALLET" --data-dir "$tmp/B" pubkey)
left=$N
while (( left > 0 )); do
  n=$(( left > 500 ? 500 : left ))
  w A send 1 --count $n --mint "$M" --lock "$PB" --locktime 3600 \
    | python3 -c 'import json,sys;print("\n".join(json.load(sys.stdin)["tokens"]))' >>"$tmp/tokens.txt" \
    || { echo "verify: preparing tokens failed"; exit 1; }
  left=$((left - n))
done
echo "prepared $(wc -l <"$tmp/tokens.txt") locked tokens of 1 sat ($(head -1 "$tmp/tokens.txt" | wc -c) characters each)"
c=$(w B verify "$tmp/tokens.txt" --mint "$M" --require-lock --min-locktime 60)
echo "C : $c"
js=$(node "$TS" verify-bench "$M" "$tmp/tokens.txt" "$PB")
echo "JS: $js"
python3 - "$c" "$js" "$N" <<'PY'
import json, sys
c, js, n = json.loads(sys.argv[1]), json.loads(sys.argv[2]), int(sys.argv[3])
if c["n_proofs"] != n or c["bad"] or js["n"] != n or js["bad"]:
    print("verify: not every proof verified (C %s, JS %s)" % (c, js)); sys.exit(1)
print("C  %.0f proofs/s, JS %.0f proofs/s" % (c["proofs_per_sec"], js["per_sec"]))
print("token_verify_ratio_c_over_js=%.2f" % (c["proofs_per_sec"] / js["per_sec"]))
PY

# Shared helpers for the cashu interop suites (sourced by cashu.sh and cashu-crash.sh).
set -uo pipefail
root=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
build=${SWARMDVM_BUILD_DIR:-$root/build/asan}
[[ $build = /* ]] || build=$root/$build
if [[ ! -x $build/cashu/dvm-wallet ]]; then
  cmake -S "$root" -B "$build" -DCMAKE_BUILD_TYPE=Debug -DSANITIZE=ON >/dev/null && cmake --build "$build" -j2 --target dvm-wallet >/dev/null || { echo "cashu: build failed"; exit 1; }
fi
WALLET=$build/cashu/dvm-wallet
TS=$root/tests/interop/cashu/ts.mjs
tmp=$(mktemp -d "${TMPDIR:-/tmp}/cashu-interop.XXXXXX")
export CASHU_TMP=$tmp
mint_pids=()
passed=0; failed=0
sanitizer_clean() { # no ASan/UBSan report from any wallet run
  if grep -q "Sanitizer\|runtime error" "$tmp/stderr.log" 2>/dev/null; then
    grep -m5 -A5 "Sanitizer\|runtime error" "$tmp/stderr.log"; return 1; fi; return 0; }
cleanup() { for p in "${mint_pids[@]}"; do kill "$p" 2>/dev/null; wait "$p" 2>/dev/null; done; rm -rf "$tmp"; }
trap cleanup EXIT
export ASAN_OPTIONS=${ASAN_OPTIONS:-detect_leaks=1}

ok() { passed=$((passed+1)); echo "ok   - $*"; }
bad() { failed=$((failed+1)); echo "FAIL - $*"; }
check() { local name=$1; shift; if "$@"; then ok "$name"; else bad "$name"; fi; }

# start_mint NAME FEE [extra args] -> sets MINT_URL, MINT_PID
start_mint() {
  local name=$1 fee=$2; shift 2
  rm -f "$tmp/$name.url"
  node "$root/scripts/dev-mint/dev-mint.mjs" --port 0 --fee-ppk "$fee" --state-dir "$tmp/mint-$name" \
    --url-file "$tmp/$name.url" "$@" >"$tmp/mint-$name.log" 2>&1 &
  MINT_PID=$!
  mint_pids+=("$MINT_PID")
  for _ in $(seq 1 100); do [[ -s $tmp/$name.url ]] && break; sleep 0.1; done
  [[ -s $tmp/$name.url ]] || { echo "dev-mint did not start:"; cat "$tmp/mint-$name.log"; exit 1; }
  MINT_URL=$(cat "$tmp/$name.url")
}

# w DIR args... : run the C wallet with a data dir (JSON output)
w() { local d=$1; shift; "$WALLET" --data-dir "$tmp/$d" --json "$@" 2>>"$tmp/stderr.log"; }
jget() { python3 -c 'import json,sys
d=json.loads(sys.stdin.read().strip().splitlines()[-1])
v=d
for k in sys.argv[1].split("."):
    v = v[int(k)] if isinstance(v,list) else v.get(k)
print("" if v is None else v)' "$1"; }
bal() { w "$1" balance --mint "$2" | jget "$3"; }
held() { # unspent+reserved+sent+incoming+pending of a wallet ('sent' = handed out, not known claimed)
  w "$1" balance --mint "$2" | python3 -c 'import json,sys;d=json.load(sys.stdin);print(d["unspent"]+d["reserved"]+d["sent"]+d["incoming"]+d["pending"])'; }
# held_union DIR...: sats of distinct proofs (by Y) that some wallet holds as unspent, reserved,
# sent, incoming or pending — a proof handed from one wallet to another is counted once.
held_union() {
  python3 - "$@" <<'PY'
import sqlite3, sys, os
seen = {}
for d in sys.argv[1:]:
    p = os.path.join(os.environ["CASHU_TMP"], d, "wallet.sqlite")
    if not os.path.exists(p): continue
    c = sqlite3.connect(p)
    for y, a, st in c.execute("select y, amount, state from proofs"):
        if st in ("unspent", "reserved", "sent", "incoming", "pending"): seen[y] = a
print(sum(seen.values()))
PY
}
mint_state() { curl -s "$1/dev/state" | jget "$2"; }
fault() { curl -s -X POST -H 'content-type: application/json' -d "{\"mode\":\"$2\",\"path\":\"$3\",\"count\":${4:-1}}" "$1/dev/fault" >/dev/null; }

#!/usr/bin/env bash
# Install what swarmdvm needs on Debian 12, idempotently: the C toolchain and libraries
# (Debian packages), clang for fuzzing, and the pinned npm packages the interop tests, the
# dev mint and the dev LLM server use. Prints what it did. Safe to run again.
set -euo pipefail
cd "$(dirname "$0")/.."

pkgs=(build-essential cmake pkg-config git clang libclang-rt-14-dev
      libsodium-dev libuv1-dev libcurl4-openssl-dev libcjson-dev libsecp256k1-dev
      libsqlite3-dev libqrencode-dev libssl-dev sqlite3 nodejs npm iproute2 iptables curl python3
      ca-certificates)

missing=()
for p in "${pkgs[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
# nodejs may come from outside Debian (e.g. NodeSource) with npm bundled: accept a working node/npm.
if command -v node >/dev/null && command -v npm >/dev/null; then
  tmp=(); for p in "${missing[@]}"; do [[ $p == nodejs || $p == npm ]] || tmp+=("$p"); done
  missing=("${tmp[@]+"${tmp[@]}"}")
fi

if ((${#missing[@]})); then
  if [[ $(id -u) -eq 0 ]]; then SUDO=(); elif command -v sudo >/dev/null; then SUDO=(sudo); else
    echo "setup: missing Debian packages: ${missing[*]}" >&2
    echo "setup: run as root or install sudo, then run scripts/setup.sh again" >&2
    exit 1
  fi
  echo "setup: installing Debian packages: ${missing[*]}"
  "${SUDO[@]}" apt-get update -qq
  DEBIAN_FRONTEND=noninteractive "${SUDO[@]}" apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
else
  echo "setup: Debian packages: all present"
fi

# Pinned npm packages (package-lock.json) for interop tests, dev mint and dev LLM.
lock=tests/interop/package-lock.json
stamp=tests/interop/node_modules/.swarmdvm-lock.sha256
want=$(sha256sum "$lock" | cut -d' ' -f1)
if [[ -f $stamp && $(cat "$stamp") == "$want" ]]; then
  echo "setup: npm packages: up to date ($(ls tests/interop/node_modules | wc -l) installed)"
else
  echo "setup: installing pinned npm packages (npm ci in tests/interop)"
  (cd tests/interop && npm ci --no-audit --no-fund --loglevel=error 2>&1 | grep -v EBADENGINE || true)
  [[ -d tests/interop/node_modules/hyperdht ]] || { echo "setup: npm ci failed" >&2; exit 1; }
  echo "$want" > "$stamp"
fi
echo "setup: done"

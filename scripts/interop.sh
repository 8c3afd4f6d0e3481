#!/usr/bin/env bash
# Interop suites: our C code against the pinned npm reference packages, on 127.0.0.1.
# Usage: scripts/interop.sh NAME [args...]   (scripts/interop.sh --list shows the names)
# Each NAME is a script scripts/interop/NAME.sh, so every module owns its own file.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
dir=$here/interop
list() { for f in "$dir"/*.sh; do [[ -e $f ]] && basename "$f" .sh; done; return 0; }
if [[ $# -lt 1 || $1 == -h || $1 == --help ]]; then
  echo "usage: scripts/interop.sh NAME [args...]"; echo "names: $(list | tr '\n' ' ')"; exit 2
fi
if [[ $1 == --list ]]; then list; exit 0; fi
name=$1; shift
if [[ ! -f $dir/$name.sh ]]; then
  echo "interop: no suite named '$name' (have: $(list | tr '\n' ' '))" >&2; exit 2
fi
exec bash "$dir/$name.sh" "$@"

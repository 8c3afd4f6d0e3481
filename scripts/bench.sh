#!/usr/bin/env bash
# Benchmarks (outside CI): each prints its headline figure on its last line.
# Usage: scripts/bench.sh NAME [args...]   (scripts/bench.sh --list shows the names)
# Each NAME is a script scripts/bench/NAME.sh, so every module owns its own file.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
dir=$here/bench
list() { for f in "$dir"/*.sh; do [[ -e $f ]] && basename "$f" .sh; done; return 0; }
if [[ $# -lt 1 || $1 == -h || $1 == --help ]]; then
  echo "usage: scripts/bench.sh NAME [args...]"; echo "names: $(list | tr '\n' ' ')"; exit 2
fi
if [[ $1 == --list ]]; then list; exit 0; fi
name=$1; shift
if [[ ! -f $dir/$name.sh ]]; then
  echo "bench: no suite named '$name' (have: $(list | tr '\n' ' '))" >&2; exit 2
fi
exec bash "$dir/$name.sh" "$@"

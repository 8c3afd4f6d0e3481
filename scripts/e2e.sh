#!/usr/bin/env bash
# End-to-end scenarios of agent, customer, dev mint and dev LLM.
# Usage: scripts/e2e.sh NAME [args...]   (scripts/e2e.sh --list shows the names)
# Each NAME is a script scripts/e2e/NAME.sh, so every module owns its own file.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
dir=$here/e2e
list() { for f in "$dir"/*.sh; do [[ -e $f ]] && basename "$f" .sh; done; return 0; }
if [[ $# -lt 1 || $1 == -h || $1 == --help ]]; then
  echo "usage: scripts/e2e.sh NAME [args...]"; echo "names: $(list | tr '\n' ' ')"; exit 2
fi
if [[ $1 == --list ]]; then list; exit 0; fi
name=$1; shift
if [[ ! -f $dir/$name.sh ]]; then
  echo "e2e: no suite named '$name' (have: $(list | tr '\n' ' '))" >&2; exit 2
fi
exec bash "$dir/$name.sh" "$@"

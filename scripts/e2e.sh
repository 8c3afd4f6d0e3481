#!/usr/bin/env bash
# End-to-end scenarios of agent, customer, dev mint and dev LLM.
# Usage: scripts/e2e.sh NAME [args...]   (scripts/e2e.sh --list shows the names)
#        scripts/e2e.sh                  runs every suite; last line "e2e: N passed, N failed"
# Each NAME is a script scripts/e2e/NAME.sh, so every module owns its own file.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
dir=$here/e2e
list() { for f in "$dir"/*.sh; do [[ -e $f ]] && basename "$f" .sh; done; return 0; }
if [[ $# -eq 0 ]]; then # every suite, one total
  tp=0; tf=0; log=$(mktemp)
  trap 'rm -f "$log"' EXIT
  for n in $(list); do
    bash "$dir/$n.sh" 2>&1 | tee "$log" || true
    out=$(tail -1 "$log")
    if [[ $out =~ ^[^:]+:\ ([0-9]+)\ passed,\ ([0-9]+)\ failed ]]; then
      tp=$((tp + BASH_REMATCH[1])); tf=$((tf + BASH_REMATCH[2]))
    else
      echo "e2e: suite $n did not report (last line: $out)" >&2; tf=$((tf + 1))
    fi
  done
  echo "e2e: $tp passed, $tf failed"
  [[ $tf -eq 0 ]]; exit
fi
if [[ $1 == -h || $1 == --help ]]; then
  echo "usage: scripts/e2e.sh NAME [args...]"; echo "names: $(list | tr '\n' ' ')"; exit 2
fi
if [[ $1 == --list ]]; then list; exit 0; fi
name=$1; shift
if [[ ! -f $dir/$name.sh ]]; then
  echo "e2e: no suite named '$name' (have: $(list | tr '\n' ' '))" >&2; exit 2
fi
exec bash "$dir/$name.sh" "$@"

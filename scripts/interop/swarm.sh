#!/usr/bin/env bash
# Swarm interop: C and JS Hyperswarm peers (`dvm-dht connect|serve --topic`, tests/interop/swarm/peer.js)
# on a loopback @hyperswarm/testnet: NDJSON both ways (JS server <-> C client, C server <->
# JS client, C <-> C), 32 MiB each way hashed on both sides, and a clear failure when nobody
# serves the topic. Last line: "swarm: N passed, N failed". All sockets bind 127.0.0.1;
# children are killed by PID.
set -euo pipefail
# shellcheck source=node_suite.bash
source "$(dirname "$0")/node_suite.bash"
run_node_suite swarm

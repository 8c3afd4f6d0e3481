#!/usr/bin/env bash
# DHT interop: dvm-dht nodes and JS hyperdht nodes (@hyperswarm/testnet) on one loopback
# testnet. C announces -> JS lookup; JS announces -> C lookup; JS bootstraps from dvm-dht;
# C bootstraps from a JS testnet; unannounce removes the record. Last line:
# "dht: N passed, N failed". All sockets bind 127.0.0.1; children are killed by PID.
set -euo pipefail
# shellcheck source=node_suite.bash
source "$(dirname "$0")/node_suite.bash"
run_node_suite dht

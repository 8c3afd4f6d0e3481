#!/usr/bin/env bash
# The jobs scenario matrix with Hyperswarm discovery on a loopback testnet (see jobs.sh).
E2E_TRANSPORT=dht exec bash "$(dirname "$0")/jobs.sh" "$@"

#!/usr/bin/env bash
# Side by side with Mosquitto: builds the release raftmq, then runs the same `raftmq bench`
# scenarios against Debian's mosquitto (if installed), one raftmq node and a 3-node
# cluster on loopback, and prints a table of ratios. Installs nothing. `--quick` for a
# short run; `--scenarios 'qos1 4->1,idle conns'` to choose.
set -euo pipefail
cd "$(dirname "$0")/.."
cargo build --release --bin raftmq
exec python3 bench/compare.py "$@"

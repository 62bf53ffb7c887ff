#!/usr/bin/env bash
# scheduler_perf's measurement on this machine: a stacked `ballast server` (API server, store,
# scheduler, controllers in one process) and `ballast agent --hollow` with 1,000 hollow nodes,
# all on this machine; `ballast bench-scheduler` creates a 10,000-replica Deployment and prints
# pods scheduled per second, deployment-to-all-running time, p50/p99 create-to-running, and
# both processes' CPU and RSS, beside Kubernetes' figures.
# Usage: scripts/bench-scheduler.sh [ballast bench-scheduler flags...]  (NODES=1000 by default)
set -euo pipefail
source "$(dirname "$0")/setup.sh"
cargo build --release --bin ballast -q
BIN="$CARGO_TARGET_DIR/release/ballast"
WORK="$(mktemp -d)"
trap 'kill $(jobs -p) 2>/dev/null || true; rm -rf "$WORK"' EXIT
API=27443
NODES="${NODES:-1000}"
"$BIN" server --data-dir "$WORK/server" --https-listen-port "$API" --bind-address 127.0.0.1 \
  --listen-client-urls http://127.0.0.1:27379 --listen-peer-urls http://127.0.0.1:27380 \
  >"$WORK/server.log" 2>&1 &
SERVER=$!
for _ in $(seq 300); do grep -q "API server ready" "$WORK/server.log" && break; sleep 0.1; done
"$BIN" agent --hollow --server "http://127.0.0.1:$API" --nodes "$NODES" --node-name hollow \
  --zones 3 >"$WORK/agent.log" 2>&1 &
AGENT=$!
"$BIN" bench-scheduler --server "http://127.0.0.1:$API" --nodes "$NODES" \
  --pid "ballast server (API+store+scheduler+controllers)=$SERVER,hollow agent=$AGENT" "$@"

#!/usr/bin/env bash
# The orchestrator's API server under the same load in three setups, one at a time, printed side
# by side: stacked (`ballast server` with its embedded member), external on a 3-member
# `ballast kv` cluster, and external on a 3-member etcd 3.4 (Debian's etcd-server). Workloads
# (`ballast bench-api`): create, get, list of 1,000 and 10,000 objects, watch delivery to one watch
# and to 100 watches of one resource (per second: deliveries); each with requests/s and p50/p99
# latency. Our aim: stacked ahead of external-on-etcd on every row.
# Usage: scripts/bench-apiserver.sh [ballast bench-api flags...]
set -euo pipefail
BALLAST_SETUP_TEST_TOOLS=1 source "$(dirname "$0")/setup.sh"
cargo build --release --bin ballast -q
BIN="$CARGO_TARGET_DIR/release/ballast"
WORK="$(mktemp -d)"
trap 'kill $(jobs -p) 2>/dev/null || true; rm -rf "$WORK"' EXIT
PORT=24979
API=26443

wait_api() { # $1 = log file
  for _ in $(seq 300); do grep -q "API server ready" "$1" && return 0; sleep 0.1; done
  echo "the API server did not start:" >&2; tail -20 "$1" >&2; exit 1
}

STORE_PIDS=()
store_cluster() { # $1 = etcd|ballast: starts 3 members; sets ENDPOINTS and STORE_PIDS
  local server=$1 cluster="" i
  ENDPOINTS=""
  STORE_PIDS=()
  for i in 1 2 3; do cluster="${cluster:+$cluster,}m$i=http://127.0.0.1:$((PORT + 10 * i + 1))"; done
  for i in 1 2 3; do
    local client="http://127.0.0.1:$((PORT + 10 * i))" peer="http://127.0.0.1:$((PORT + 10 * i + 1))"
    local flags=(--name "m$i" --data-dir "$WORK/$server/m$i" --listen-client-urls "$client" --advertise-client-urls "$client"
      --listen-peer-urls "$peer" --initial-advertise-peer-urls "$peer" --initial-cluster "$cluster")
    if [ "$server" = etcd ]; then etcd "${flags[@]}" >"$WORK/$server-m$i.log" 2>&1 &
    else "$BIN" kv "${flags[@]}" >"$WORK/$server-m$i.log" 2>&1 &
    fi
    STORE_PIDS+=($!)
    ENDPOINTS="${ENDPOINTS:+$ENDPOINTS,}http://127.0.0.1:$((PORT + 10 * i))"
  done
  for _ in $(seq 150); do
    ETCDCTL_API=3 etcdctl --endpoints "$ENDPOINTS" endpoint health >/dev/null 2>&1 && return 0
    sleep 0.2
  done
  echo "the $server cluster did not become healthy" >&2; exit 1
}

run() { # $1 = label, then `ballast server` flags
  local label=$1
  shift
  "$BIN" server --data-dir "$WORK/server-$label" --https-listen-port "$API" --bind-address 127.0.0.1 \
    --listen-client-urls "http://127.0.0.1:$((PORT + 90))" --listen-peer-urls "http://127.0.0.1:$((PORT + 91))" \
    "$@" >"$WORK/server-$label.log" 2>&1 &
  local pid=$!
  wait_api "$WORK/server-$label.log"
  "$BIN" bench-api --server "http://127.0.0.1:$API" --json "${BENCH_FLAGS[@]}" \
    | awk -v p="$label|" '{ print p $0 }' >>"$WORK/results"
  kill "$pid"; wait "$pid" 2>/dev/null || true
}

BENCH_FLAGS=("$@")
run stacked
store_cluster ballast
run "ballast kv" --datastore-endpoint "$ENDPOINTS"
kill "${STORE_PIDS[@]}"; wait "${STORE_PIDS[@]}" 2>/dev/null || true
store_cluster etcd
run "etcd 3.4" --datastore-endpoint "$ENDPOINTS"
kill "${STORE_PIDS[@]}"; wait "${STORE_PIDS[@]}" 2>/dev/null || true
python3 - "$WORK/results" <<'PY'
import json, sys
rows = {}
for line in open(sys.argv[1]):
    label, rest = line.rstrip("\n").split("|", 1)
    r = json.loads(rest)
    rows.setdefault(r["workload"], {})[label] = r
labels = ["stacked", "ballast kv", "etcd 3.4"]
print(f"{'workload':16} {'metric':11} " + " ".join(f"{l:>14}" for l in labels))
for name, r in rows.items():
    for metric in ("per_second", "p50_ms", "p99_ms"):
        cells = [f"{r[l][metric]:14.2f}" if l in r else f"{'-':>14}" for l in labels]
        print(f"{name:16} {metric:11} " + " ".join(cells))
    errors = [r[l]["errors"] for l in labels if l in r]
    if any(errors):
        print(f"{name:16} {'errors':11} " + " ".join(f"{e:14}" for e in errors))
PY

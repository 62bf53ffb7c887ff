#!/usr/bin/env bash
# Runs the same workloads against a fresh single-member etcd 3.4 (Debian's etcd-server) and a fresh
# single-member Ballast on this machine, one after the other, and prints them side by side with the
# ratio Ballast/etcd (throughput: higher is better; latency: lower is better) and each server's
# peak RSS. Usage: scripts/bench-vs-etcd.sh [scale]   (scale multiplies the request counts; default 1)
set -euo pipefail
BALLAST_SETUP_TEST_TOOLS=1 source "$(dirname "$0")/setup.sh"
cargo build --release --bin ballast -q
BIN="$CARGO_TARGET_DIR/release/ballast"
SCALE="${1:-1}"
WORK="$(mktemp -d)"
trap 'kill $(jobs -p) 2>/dev/null || true; rm -rf "$WORK"' EXIT
PORT=23979

# name, then ballast bench arguments.
WORKLOADS=(
  "put 1 client|--clients 1 --conns 1 --total $((2000 * SCALE)) --key-space 10000 put"
  "put 256 clients|--clients 256 --conns 16 --total $((50000 * SCALE)) --key-space 10000 put"
  "get linearizable 1 client|--clients 1 --conns 1 --total $((5000 * SCALE)) --key-space 10000 range --consistency l"
  "get linearizable 256 clients|--clients 256 --conns 16 --total $((100000 * SCALE)) --key-space 10000 range --consistency l"
  "get serializable 256 clients|--clients 256 --conns 16 --total $((100000 * SCALE)) --key-space 10000 range --consistency s"
)

run_server() { # $1 = etcd|ballast
  local dir="$WORK/$1"
  if [ "$1" = etcd ]; then
    etcd --data-dir "$dir" --listen-client-urls "http://127.0.0.1:$PORT" --advertise-client-urls "http://127.0.0.1:$PORT" \
      --listen-peer-urls "http://127.0.0.1:$((PORT + 1))" --initial-advertise-peer-urls "http://127.0.0.1:$((PORT + 1))" \
      --initial-cluster "default=http://127.0.0.1:$((PORT + 1))" >"$WORK/$1.log" 2>&1 &
  else
    "$BIN" kv --data-dir "$dir" --listen-client-urls "http://127.0.0.1:$PORT" --advertise-client-urls "http://127.0.0.1:$PORT" >"$WORK/$1.log" 2>&1 &
  fi
  local pid=$!
  for _ in $(seq 100); do
    "$BIN" bench --endpoints "127.0.0.1:$PORT" --total 1 put >/dev/null 2>&1 && break
    sleep 0.2
  done
  for w in "${WORKLOADS[@]}"; do
    # shellcheck disable=SC2086
    "$BIN" bench --endpoints "127.0.0.1:$PORT" --json ${w#*|} | sed "s/^/$1|${w%%|*}|/" >>"$WORK/results"
  done
  echo "$1|rss|$(awk '/VmHWM/ {print $2}' "/proc/$pid/status")" >>"$WORK/results"
  echo "$1|disk|$(du -sk "$dir" | cut -f1)" >>"$WORK/results"
  kill "$pid"; wait "$pid" 2>/dev/null || true
}

run_server etcd
run_server ballast
python3 - "$WORK/results" <<'PY'
import json, sys
rows, extra = {}, {}
for line in open(sys.argv[1]):
    server, name, rest = line.rstrip("\n").split("|", 2)
    if name in ("rss", "disk"):
        extra[(server, name)] = int(rest)
    else:
        rows.setdefault(name, {})[server] = json.loads(rest)
print(f"{'workload':32} {'metric':8} {'etcd 3.4':>12} {'ballast':>12} {'ballast/etcd':>13}")
for name, r in rows.items():
    e, b = r["etcd"], r["ballast"]
    for metric in ("qps", "p50_ms", "p99_ms"):
        print(f"{name:32} {metric:8} {e[metric]:12.2f} {b[metric]:12.2f} {b[metric] / e[metric]:13.2f}")
for key, label in (("rss", "peak RSS MiB"), ("disk", "data dir MiB")):
    e, b = extra[("etcd", key)] / 1024, extra[("ballast", key)] / 1024
    print(f"{label:41} {e:12.1f} {b:12.1f} {b / e:13.2f}")
PY

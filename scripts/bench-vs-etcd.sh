#!/usr/bin/env bash
# Runs the same workloads against etcd 3.4 (Debian's etcd-server) and Ballast on this machine, in
# the same shapes (one member; three members on loopback), one server at a time, and prints them
# side by side with the ratio Ballast/etcd (throughput: higher is better; latency: lower is better)
# and each server's peak RSS and data size (summed over members).
# Usage: scripts/bench-vs-etcd.sh [scale]   (scale multiplies the request counts; default 1)
set -euo pipefail
BALLAST_SETUP_TEST_TOOLS=1 source "$(dirname "$0")/setup.sh"
cargo build --release --bin ballast -q
BIN="$CARGO_TARGET_DIR/release/ballast"
SCALE="${1:-1}"
WORK="$(mktemp -d)"
trap 'kill $(jobs -p) 2>/dev/null || true; rm -rf "$WORK"' EXIT
PORT=23979

# name, then ballast bench arguments (the endpoints are added).
WORKLOADS=(
  "put 1 client|--clients 1 --conns 1 --total $((2000 * SCALE)) --key-space 10000 put"
  "put 256 clients|--clients 256 --conns 16 --total $((50000 * SCALE)) --key-space 10000 put"
  "get linearizable 1 client|--clients 1 --conns 1 --total $((5000 * SCALE)) --key-space 10000 range --consistency l"
  "get linearizable 256 clients|--clients 256 --conns 16 --total $((100000 * SCALE)) --key-space 10000 range --consistency l"
  "get serializable 256 clients|--clients 256 --conns 16 --total $((100000 * SCALE)) --key-space 10000 range --consistency s"
  "txn compare-and-swap 256 clients|--clients 256 --conns 16 --total $((30000 * SCALE)) --key-space 10000 txn"
  "delete 256 clients|--clients 256 --conns 16 --total $((30000 * SCALE)) --key-space 10000 delete"
  "watch 1k watchers, 100 puts/s|--clients 1 --conns 16 --total $((300 * SCALE)) watch --watchers 1000 --streams 100 --rate 100"
  "watch 10k watchers, 100 puts/s|--clients 1 --conns 16 --total $((300 * SCALE)) watch --watchers 10000 --streams 100 --rate 100"
)
# The large dataset (1 member): a million keys written, then read.
LARGE=(
  "put 256 clients, sequential keys|--clients 256 --conns 16 --total $((1000000 * SCALE)) --key-space $((1000000 * SCALE)) --sequential-keys put"
  "get serializable 256 clients|--clients 256 --conns 16 --total $((100000 * SCALE)) --key-space $((1000000 * SCALE)) range --consistency s"
  "get linearizable 1 client|--clients 1 --conns 1 --total $((5000 * SCALE)) --key-space $((1000000 * SCALE)) range --consistency l"
)

run_cluster() { # $1 = etcd|ballast, $2 = members, $3 = shape label, $4 = name of the workload array
  local server=$1 n=$2 shape=$3 pids=() endpoints="" cluster="" i
  local -n workloads=$4
  for i in $(seq "$n"); do cluster="${cluster:+$cluster,}m$i=http://127.0.0.1:$((PORT + 10 * i + 1))"; done
  for i in $(seq "$n"); do
    local client="http://127.0.0.1:$((PORT + 10 * i))" peer="http://127.0.0.1:$((PORT + 10 * i + 1))"
    local flags=(--name "m$i" --data-dir "$WORK/$server-$n-$4/m$i" --listen-client-urls "$client" --advertise-client-urls "$client"
      --listen-peer-urls "$peer" --initial-advertise-peer-urls "$peer" --initial-cluster "$cluster")
    if [ "$server" = etcd ]; then etcd "${flags[@]}" >"$WORK/$server-$n-$4-m$i.log" 2>&1 &
    else "$BIN" kv "${flags[@]}" >"$WORK/$server-$n-$4-m$i.log" 2>&1 &
    fi
    pids+=($!)
    endpoints="${endpoints:+$endpoints,}127.0.0.1:$((PORT + 10 * i))"
  done
  for _ in $(seq 150); do
    "$BIN" bench --endpoints "$endpoints" --total 1 put >/dev/null 2>&1 && break
    sleep 0.2
  done
  for w in "${workloads[@]}"; do
    # shellcheck disable=SC2086
    "$BIN" bench --endpoints "$endpoints" --json ${w#*|} | awk -v p="$server|$shape: ${w%%|*}|" '{ print p $0 }' >>"$WORK/results" || true
  done
  local rss=0 pid
  for pid in "${pids[@]}"; do rss=$((rss + $(awk '/VmHWM/ {print $2}' "/proc/$pid/status"))); done
  echo "$server|$shape: peak RSS MiB|$rss" >>"$WORK/results"
  echo "$server|$shape: data dir MiB|$(du -sk "$WORK/$server-$n-$4" | cut -f1)" >>"$WORK/results"
  if [ "$n" -gt 1 ]; then failover "$server" "$shape" "$endpoints" "${pids[@]}"; fi
  kill "${pids[@]}" 2>/dev/null || true; wait "${pids[@]}" 2>/dev/null || true
}

# Failover: 8 clients put 200 times a second through the members that are not the leader, and
# the leader is killed (kill -9) 3 s in; the row is the longest time no put succeeded.
failover() { # $1 = server, $2 = shape label, $3 = endpoints, then the members' pids in order
  local server=$1 shape=$2 endpoints=$3 leader others bench
  shift 3
  local pids=("$@")
  leader=$(ETCDCTL_API=3 etcdctl --endpoints "$endpoints" endpoint status -w json | python3 -c '
import json, sys
status = json.load(sys.stdin)
print([i for i, s in enumerate(status) if s["Status"]["header"]["member_id"] == s["Status"]["leader"]][0])')
  others=$(echo "$endpoints" | tr , '\n' | sed "$((leader + 1))d" | paste -sd,)
  "$BIN" bench --endpoints "$others" --json --clients 8 --conns 2 --rate 200 --timeout-ms 200 --total 2000 put \
    | awk -v p="$server|$shape: leader killed under 200 puts/s|" '{ print p $0 }' >>"$WORK/results" &
  bench=$!
  sleep 3
  kill -9 "${pids[$leader]}"
  wait "$bench" || true
}

for server in etcd ballast; do run_cluster "$server" 1 "1 member" WORKLOADS; done
for server in etcd ballast; do run_cluster "$server" 3 "3 members" WORKLOADS; done
for server in etcd ballast; do run_cluster "$server" 1 "1 member, 1M keys" LARGE; done
python3 - "$WORK/results" <<'PY'
import json, sys
rows, extra = {}, {}
for line in open(sys.argv[1]):
    server, name, rest = line.rstrip("\n").split("|", 2)
    if name.endswith("MiB"):
        extra.setdefault(name, {})[server] = int(rest) / 1024
    else:
        rows.setdefault(name, {})[server] = json.loads(rest)
print(f"{'workload':42} {'metric':8} {'etcd 3.4':>12} {'ballast':>12} {'ballast/etcd':>13}")
for name, r in rows.items():
    e, b = r.get("etcd"), r.get("ballast")
    if not e or not b:
        print(f"{name:42} {'missing':8} {'ran' if e else 'failed':>12} {'ran' if b else 'failed':>12}")
        continue
    # A failover row: what matters is how long writes stopped.
    for metric in ("stall_ms",) if "leader killed" in name else ("qps", "p50_ms", "p99_ms"):
        # A latency under 5 us prints as 0.00 ms: no ratio to give.
        ratio = f"{b[metric] / e[metric]:13.2f}" if e[metric] else f"{'-':>13}"
        print(f"{name:42} {metric:8} {e[metric]:12.2f} {b[metric]:12.2f} {ratio}")
    errors = (e.get("errors", 0), b.get("errors", 0))
    if any(errors):
        print(f"{name:42} {'errors':8} {errors[0]:12} {errors[1]:12}")
for name, r in extra.items():
    print(f"{name:51} {r['etcd']:12.1f} {r['ballast']:12.1f} {r['ballast'] / r['etcd']:13.2f}")
PY

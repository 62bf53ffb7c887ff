#!/usr/bin/env bash
# The long chaos run: every fault of tests/chaos.rs ROUNDS times (default 10), each round with a
# new seed, against Ballast (or etcd 3.4 with BALLAST_TEST_SERVER=etcd). Prints one line per run
# (ops, unknown outcomes, watch events, checker verdict) and a closing count.
#   scripts/chaos.sh [ROUNDS] [TEST-NAME-FILTER]
# (`--workspace` keeps cargo's feature set the same as the test command's, so RocksDB's C++ built
# for one serves the other.)
set -euo pipefail
BALLAST_SETUP_TEST_TOOLS=1 source "$(dirname "$0")/setup.sh"
rounds="${1:-10}"
filter="${2:-}"
log="${TMPDIR:-/tmp}/ballast-chaos.log"
status=0
CHAOS_ROUNDS="$rounds" cargo test --workspace --test chaos -- --test-threads 1 --nocapture $filter 2>&1 | tee "$log" |
  grep --line-buffered -E "^(fault|[A-Z][A-Za-z]+-[0-9]+m-|control)|panicked|^test result" || status=$?
runs=$(grep -cE "^[A-Z][A-Za-z]+-[0-9]+m-[0-9]+-seed[0-9]+: linearizable" "$log" || true)
ops=$(grep -E "^[A-Z][A-Za-z]+: [0-9]+ ops" "$log" | awk '{ s += $2 } END { print s + 0 }')
events=$(grep -E "^[A-Z][A-Za-z]+: [0-9]+ ops" "$log" | sed -E 's/.* with ([0-9]+) events.*/\1/' | awk '{ s += $1 } END { print s + 0 }')
echo "chaos: $runs histories checked linearizable with valid watches; $ops operations, $events watch events (full log: $log)"
exit "$status"

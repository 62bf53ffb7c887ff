#!/usr/bin/env bash
# The long version of the reliability suites (issue 6; the test command runs each briefly):
#   1. chaos: every fault of tests/chaos.rs ROUNDS times against 3- and 5-member clusters, each
#      history checked for linearizability and its watches for order, gaps and duplicates;
#      and every leader fault of tests/chaos_leases.rs ROUNDS times (short leases, locks: no key
#      of a kept-alive lease lost, one lock holder at a time);
#   2. durability: power-loss cycles on lazyfs (tests/durability.rs), kills mid-install, the
#      restarted-leader read, and kill -9 cycles of the embedded store (store/tests/crash.rs);
#   3. simulation: seeds of the deterministic raft simulation (raft/tests/sim.rs; release build,
#      without RocksDB, so that openraft's debug assertions are off as in a real build).
# Usage: scripts/reliability.sh [SCALE]   (default 1: 10 chaos rounds, 100 power-loss cycles,
# 10 install cycles, 200 store crash cycles, 1000 simulation seeds; SCALE multiplies them)
# Prints each suite's closing figures, then a summary; exits non-zero if any suite failed.
set -uo pipefail
BALLAST_SETUP_TEST_TOOLS=1 source "$(dirname "$0")/setup.sh"
set +e
scale="${1:-1}"
logs="$(mktemp -d "${TMPDIR:-/tmp}/ballast-reliability.XXXX")"
failed=()

suite() { # $1 = name, then the command; its log goes to $logs/$1.log
  local name=$1 status
  shift
  echo "== $name: $*"
  "$@" >"$logs/$name.log" 2>&1
  status=$?
  grep -E "^(chaos:|lease chaos:|durability:|snapshot install:|crash:|total:|crash reverted|test result)|panicked|VIOLATION" "$logs/$name.log" | sed "s/^/$name: /"
  [ "$status" -eq 0 ] || failed+=("$name (exit $status, log $logs/$name.log)")
}

suite chaos bash "$(dirname "$0")/chaos.sh" "$((10 * scale))"
suite lease-chaos bash "$(dirname "$0")/lease-chaos.sh" "$((10 * scale))"
suite durability env DURABILITY_CYCLES="$((100 * scale))" DURABILITY_INSTALL_CYCLES="$((10 * scale))" \
  cargo test --workspace --test durability -- --test-threads 1 --nocapture
suite store-crash env CRASH_CYCLES="$((200 * scale))" cargo test --workspace --test crash -- --nocapture
suite simulation env SIM_SEEDS="$((1000 * scale))" \
  cargo test --release -p ballast-raft --no-default-features --test sim -- --nocapture simulation_keeps_raft_safe

echo "logs: $logs"
if [ "${#failed[@]}" -gt 0 ]; then
  printf 'FAILED: %s\n' "${failed[@]}"
  exit 1
fi
echo "reliability: every suite passed"

#!/usr/bin/env bash
# The long lease chaos run: every leader fault of tests/chaos_leases.rs (partition, pause, kill,
# each longer than the leases' TTLs) ROUNDS times (default 10), each round with a new seed, against
# Ballast (or etcd 3.4 with BALLAST_TEST_SERVER=etcd). Prints one line per run and a closing count.
#   scripts/lease-chaos.sh [ROUNDS] [TEST-NAME-FILTER]
set -euo pipefail
BALLAST_SETUP_TEST_TOOLS=1 source "$(dirname "$0")/setup.sh"
rounds="${1:-10}"
filter="${2:-}"
log="${TMPDIR:-/tmp}/ballast-lease-chaos.log"
status=0
CHAOS_ROUNDS="$rounds" cargo test --workspace --test chaos_leases -- --test-threads 1 --nocapture $filter 2>&1 | tee "$log" |
  grep --line-buffered -E "^(fault|[A-Z][A-Za-z]+-[0-9]+-seed)|panicked|^test result" || status=$?
lines=$(grep -E "^[A-Z][A-Za-z]+-[0-9]+-seed[0-9]+ \(saved" "$log" || true)
runs=$(grep -c "0 violations" <<<"$lines" || true)
sum() { sed -nE "s/.*[ (]([0-9]+) $1.*/\1/p" <<<"$lines" | awk '{ s += $1 } END { print s + 0 }'; }
echo "lease chaos: $runs histories with 0 violations; $(sum sessions,) sessions, $(sum renewals,) renewals, $(sum reads) reads, $(sum 'key checks') key checks, $(sum 'lock holds;') lock holds (full log: $log)"
exit "$status"

#!/usr/bin/env bash
# The test command: set up, lint, and run every test.
set -euo pipefail
BALLAST_SETUP_TEST_TOOLS=1 source "$(dirname "$0")/setup.sh"
cargo clippy --workspace --all-targets -q -- -D warnings
# The store, raft's wire types and the wire<->store conversions must stay buildable without RocksDB (fuzzing builds them so,
# without the C++).
cargo clippy -p ballast-store --no-default-features --lib -q -- -D warnings
cargo clippy -p ballast-raft --no-default-features --lib -q -- -D warnings
cargo clippy -p ballast-proto --features store --lib -q -- -D warnings
cargo test --workspace 2>&1 | tee "${TMPDIR:-/tmp}/ballast-test.log"
# A short run of every fuzz target (cargo-fuzz on stable: no sanitizer), from the committed seed
# corpus (copied, so runs do not grow the clone). A crash fails the run and leaves the input in
# fuzz/artifacts/. FUZZ_SECONDS sets the time per target.
command -v cargo-fuzz >/dev/null || cargo install cargo-fuzz --locked -q
for target in key_encoding wire_requests store_ops raft_decode; do
  corpus="$(mktemp -d)"
  cp -r "fuzz/corpus/$target/." "$corpus/"
  status=0
  CARGO_TARGET_DIR="$HOME/.cache/ballast-fuzz-target" cargo fuzz run -s none --fuzz-dir fuzz "$target" "$corpus" \
    -- -max_total_time="${FUZZ_SECONDS:-20}" >"$corpus.log" 2>&1 || status=$?
  grep -E "^Done|panicked|SUMMARY|ERROR" "$corpus.log" | sed "s/^/fuzz $target: /" || true
  rm -rf "$corpus" "$corpus.log"
  if [ "$status" -ne 0 ]; then echo "fuzz target $target failed (exit $status)" >&2; exit 1; fi
done
# One closing line over every test binary, for CI's reader.
awk '/^test result:/ { p += $4; f += $6; i += $8 } END { printf "%d passed, %d failed, %d skipped\n", p, f, i }' "${TMPDIR:-/tmp}/ballast-test.log"

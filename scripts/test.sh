#!/usr/bin/env bash
# The test command: set up, lint, and run every test.
set -euo pipefail
BALLAST_SETUP_TEST_TOOLS=1 source "$(dirname "$0")/setup.sh"
cargo clippy --workspace --all-targets -q -- -D warnings
# The store must stay buildable without RocksDB (fuzzing builds it so, without the C++).
cargo clippy -p ballast-store --no-default-features --lib -q -- -D warnings
cargo test --workspace 2>&1 | tee "${TMPDIR:-/tmp}/ballast-test.log"
# One closing line over every test binary, for CI's reader.
awk '/^test result:/ { p += $4; f += $6; i += $8 } END { printf "%d passed, %d failed, %d skipped\n", p, f, i }' "${TMPDIR:-/tmp}/ballast-test.log"

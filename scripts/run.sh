#!/usr/bin/env bash
# The main job: set up, build, and run `ballast` (by default the embedded store's status in
# ./default.ballast). Any arguments are passed to `ballast`, e.g.
#   scripts/run.sh store put greeting hello
set -euo pipefail
source "$(dirname "$0")/setup.sh"
cargo build --release --bin ballast -q
if [ "$#" -eq 0 ]; then set -- store --data-dir default.ballast status; fi
exec "$CARGO_TARGET_DIR/release/ballast" "$@"

#!/usr/bin/env bash
# The main job: set up, build, and run `ballast`. With no arguments: a single-member Ballast serving
# the etcd v3 API on http://127.0.0.1:2379 (data in ./default.ballast), until Ctrl-C. Any arguments
# are passed to `ballast` instead, e.g.
#   scripts/run.sh kv --name n1 --data-dir /var/lib/ballast --listen-client-urls http://0.0.0.0:2379
set -euo pipefail
source "$(dirname "$0")/setup.sh"
cargo build --release --bin ballast -q
if [ "$#" -eq 0 ]; then set -- kv; fi
exec "$CARGO_TARGET_DIR/release/ballast" "$@"

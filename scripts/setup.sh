#!/usr/bin/env bash
# Installs what building Ballast needs (if missing) and builds it. Sourced by run.sh and test.sh.
set -euo pipefail
cd "$(dirname "$0")/.."

# RocksDB's C++ takes ~10 minutes to build on 2 cores: keep the build outside the clone so that
# every clone (and CI) reuses it.
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$HOME/.cache/ballast-target}"

need_apt=()
# bindgen (for RocksDB's bindings) needs libclang; the C++ build needs a compiler.
# (libclang-cpp, which other packages bring, is not what bindgen loads.)
ls /usr/lib/llvm-*/lib/libclang.so* /usr/lib/*/libclang-[0-9]*.so* >/dev/null 2>&1 || need_apt+=(libclang-dev)
command -v g++ >/dev/null || need_apt+=(g++)
command -v make >/dev/null || need_apt+=(make)
# The tests drive Debian's real etcdctl 3.4 against Ballast (and etcd 3.4 as the reference server).
if [ "${BALLAST_SETUP_TEST_TOOLS:-0}" = 1 ]; then
  command -v etcdctl >/dev/null || need_apt+=(etcd-client)
  command -v etcd >/dev/null || need_apt+=(etcd-server)
  # The etcd-client crate (a test dependency) compiles its .proto files with protoc.
  command -v protoc >/dev/null || need_apt+=(protobuf-compiler)
  # tests/durability.rs: its fsync-disabled control runs the member under eatmydata; lazyfs
  # (tools/lazyfs) mounts through /dev/fuse, with fusermount3 where it may not mount directly.
  command -v eatmydata >/dev/null || need_apt+=(eatmydata)
  command -v fusermount3 >/dev/null || need_apt+=(fuse3)
fi
if [ "${#need_apt[@]}" -gt 0 ]; then
  echo "setup: installing ${need_apt[*]}" >&2
  SUDO=""; [ "$(id -u)" -eq 0 ] || SUDO="sudo"
  $SUDO apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq "${need_apt[@]}" >/dev/null
fi
if ! command -v cargo >/dev/null; then
  echo "setup: cargo is missing; install Rust (rustup) first" >&2
  exit 1
fi

#!/bin/bash
# Builds (once) the ostree-ext CLI of bench/ostree-ext-cli and prints the binary's path.
#
#   OE=$(bash bench/ostree-ext-cli/build.sh) && "$OE" container --help
#
# Cached in ${OCITREE_TOOLS_CACHE:-$HOME/.cache/ocitree}/ostree-ext-cli/<hash of Cargo.lock>,
# so a rebuild happens only when the pinned versions change. A cold release build takes about
# 4 minutes on 2 cores. Build needs: libostree-dev, libzstd-dev, pkg-config (`.ci/deps`).
set -euo pipefail
SRC=$(cd "$(dirname "$0")" && pwd)
KEY=$(cat "$SRC/Cargo.toml" "$SRC/Cargo.lock" "$SRC/src/main.rs" | sha256sum | cut -c1-16)
CACHE=${OCITREE_TOOLS_CACHE:-$HOME/.cache/ocitree}/ostree-ext-cli/$KEY
BIN=$CACHE/release/ostree-ext-cli
if [ ! -x "$BIN" ]; then
  mkdir -p "$CACHE"
  # One build at a time (tests run in parallel).
  exec 9>"$CACHE.lock"
  flock 9
  if [ ! -x "$BIN" ]; then
    cargo build --release --locked -q --manifest-path "$SRC/Cargo.toml" --target-dir "$CACHE" >&2
  fi
fi
echo "$BIN"

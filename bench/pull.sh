#!/bin/bash
# bench/pull.sh - registry pull speed of ocitree against skopeo + ocitree, from one run.
#
# Uses the 3-layer `debian` OCI image that bench/import.sh builds (cached in
# $OCITREE_BENCH_CACHE, default /var/tmp/ocitree-bench; run bench/import.sh once first, or this
# script builds it the same way). Starts Debian's docker-registry on 127.0.0.1 (storage on a
# tmpfs), pushes the image with skopeo, then times, once each, into fresh bare-user repos:
#   ocitree   ocitree import docker://127.0.0.1:PORT/bench/debian:latest (native pull:
#             3 parallel downloads, layers imported as they arrive)
#   skopeo    skopeo copy docker://… oci:DIR, then ocitree import oci:DIR (summed)
#   repull    ocitree import of the same reference again under another name (no layer fetched)
# and prints each time with peak RSS, and the ratio skopeo+ocitree / ocitree (>1: the native
# pull is faster).
#
# Usage: bash bench/pull.sh            (as root; OCITREE_BIN to skip the build)
set -euo pipefail
HERE=$(cd "$(dirname "$0")" && pwd)
TOP=$(dirname "$HERE")
CACHE=${OCITREE_BENCH_CACHE:-/var/tmp/ocitree-bench}
for t in docker-registry skopeo mmdebstrap umoci jq curl /usr/bin/time; do
  command -v "$t" >/dev/null || { echo "missing $t: run bash .ci/deps" >&2; exit 1; }
done
if [ -z "${OCITREE_BIN:-}" ]; then
  (cd "$TOP" && cargo build --release --quiet)
  OCITREE_BIN=$TOP/target/release/ocitree
fi
mkdir -p "$CACHE"
if [ ! -s "$CACHE/rootfs.tar" ]; then
  echo "building Debian minbase rootfs (once)..." >&2
  mmdebstrap --variant=minbase --skip=output/dev bookworm "$CACHE/rootfs.tar.tmp" >&2
  mv "$CACHE/rootfs.tar.tmp" "$CACHE/rootfs.tar"
fi
if [ ! -f "$CACHE/images/debian/index.json" ]; then
  echo "building the 3-layer debian image (once)..." >&2
  bash "$TOP/../shared/scripts/make-images.sh" "$CACHE/images" "$CACHE/rootfs.tar" >&2
fi

T=$(mktemp -d /tmp/ocitree-pull-bench.XXXXXX)
REG_PID=
cleanup() {
  [ -n "$REG_PID" ] && kill "$REG_PID" 2>/dev/null && wait "$REG_PID" 2>/dev/null
  umount "$T" 2>/dev/null || true
  rm -rf "$T"
}
trap cleanup EXIT
mount -t tmpfs -o size=8g tmpfs "$T" 2>/dev/null || { echo "(no tmpfs mount; using $T on disk)" >&2; }

PORT=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
mkdir -p "$T/registry"
cat > "$T/registry/config.yml" <<YML
version: 0.1
log:
  level: error
storage:
  filesystem:
    rootdirectory: $T/registry/data
http:
  addr: 127.0.0.1:$PORT
YML
docker-registry serve "$T/registry/config.yml" > "$T/registry/log" 2>&1 &
REG_PID=$!
for _ in $(seq 100); do curl -sf "http://127.0.0.1:$PORT/v2/" >/dev/null && break; sleep 0.1; done
REF=127.0.0.1:$PORT/bench/debian:latest
skopeo copy -q --dest-tls-verify=false "oci:$CACHE/images/debian:latest" "docker://$REF"

# measure NAME CMD...: runs CMD with GNU time into $T/NAME.time ("secs kb")
measure() {
  local name=$1; shift
  /usr/bin/time -f '%e %M' -o "$T/$name.time" "$@" >/dev/null 2>"$T/err.out" || {
    echo "FAILED: $*" >&2; cat "$T/err.out" >&2; exit 1; }
}
secs() { awk '{print $1}' "$T/$1.time"; }
rss() { awk '{print $2}' "$T/$1.time"; }

measure ocitree "$OCITREE_BIN" --repo "$T/r1" import --tls-verify=false "docker://$REF" debian
measure repull "$OCITREE_BIN" --repo "$T/r1" import --tls-verify=false "docker://$REF" again
measure skopeo skopeo copy -q --src-tls-verify=false "docker://$REF" "oci:$T/pulled:latest"
measure import "$OCITREE_BIN" --repo "$T/r2" import "oci:$T/pulled:latest" debian

o=$(secs ocitree); s=$(secs skopeo); i=$(secs import)
both=$(echo "$s + $i" | bc)
printf '\n== pull of the 3-layer debian image (%s bytes of blobs) from a loopback registry, one run ==\n' \
  "$(du -sb "$T/pulled/blobs" | cut -f1)"
printf '%-44s %8s s  %8s KiB peak RSS\n' "ocitree import docker://" "$o" "$(rss ocitree)"
printf '%-44s %8s s  %8s KiB\n' "skopeo copy docker:// oci:" "$s" "$(rss skopeo)"
printf '%-44s %8s s  %8s KiB\n' "  + ocitree import oci:" "$i" "$(rss import)"
printf '%-44s %8s s\n' "  = skopeo + ocitree" "$both"
printf '%-44s %8s s  %8s KiB\n' "ocitree re-pull (no layer fetched)" "$(secs repull)" "$(rss repull)"
printf 'ratio (skopeo + ocitree) / ocitree: %.2fx\n' "$(echo "$both / $o" | bc -l)"

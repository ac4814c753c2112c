#!/bin/bash
# bench/hostile.sh - time and peak RSS of ocitree import on hostile images (too large for CI;
# tests/it/hostile.rs runs small versions of each).
#
#   gzip-bomb / zstd-bomb  a ~1 MB blob (gzip) / ~300 KB (zstd) inflating to BOMB_GIB GiB:
#                          a one-file tar, then zeros after its end. Must finish, flat memory.
#   files                  one layer of FILES one-byte files (1000 per directory)
#   layers                 LAYERS one-file layers
#   pax                    a 100 MiB PAX record: must be refused early, flat memory
#
# Usage: bash bench/hostile.sh [--bomb-gib N] [--files N] [--layers N] [--only NAME...]
#        (as root, after `bash .ci/deps`; OCITREE_BIN to skip the build; work dir on disk:
#        $OCITREE_BENCH_CACHE, default /var/tmp/ocitree-bench)
set -euo pipefail
BOMB_GIB=8 FILES=1000000 LAYERS=2000 ONLY=()
while [ $# -gt 0 ]; do
  case "$1" in
    --bomb-gib) BOMB_GIB=$2; shift 2 ;;
    --files) FILES=$2; shift 2 ;;
    --layers) LAYERS=$2; shift 2 ;;
    --only) shift; while [ $# -gt 0 ] && [ "${1#--}" = "$1" ]; do ONLY+=("$1"); shift; done ;;
    *) echo "usage: $0 [--bomb-gib N] [--files N] [--layers N] [--only NAME...]" >&2; exit 2 ;;
  esac
done
HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
TOP=$(dirname "$HERE")
for t in python3 zstd ostree /usr/bin/time; do
  command -v "$t" >/dev/null || { echo "missing $t: run bash .ci/deps" >&2; exit 1; }
done
if [ -z "${OCITREE_BIN:-}" ]; then
  (cd "$TOP" && cargo build --release --quiet)
  OCITREE_BIN=$TOP/target/release/ocitree
fi
CACHE=${OCITREE_BENCH_CACHE:-/var/tmp/ocitree-bench}
mkdir -p "$CACHE"
T=$(mktemp -d "$CACHE/hostile.XXXXXX")
trap 'rm -rf "$T"' EXIT

wanted() { [ ${#ONLY[@]} -eq 0 ] || printf '%s\n' "${ONLY[@]}" | grep -qx "$1"; }

# case NAME KIND N: builds the image, imports it into a fresh repo under GNU time
case_() {
  local name=$1 kind=$2 n=$3
  wanted "$name" || return 0
  python3 "$HERE/hostile-images.py" "$kind" "$T/$name" "$n"
  rm -rf "$T/repo"; ostree --repo="$T/repo" init --mode=bare-user
  local rc=0
  /usr/bin/time -f '%e %M' -o "$T/time" "$OCITREE_BIN" --repo "$T/repo" \
    import "oci:$T/$name:latest" "$name" >"$T/out" 2>"$T/err" || rc=$?
  read -r secs kib < <(tail -1 "$T/time")
  printf '%-10s %-14s blob %10s B  exit %d  %8.2f s  peak RSS %7d KiB  %s\n' "$name" "$kind $n" \
    "$(du -sb "$T/$name/blobs" | cut -f1)" "$rc" "$secs" "$kib" "$(head -c 160 "$T/err")"
  rm -rf "$T/$name" "$T/repo"
}

case_ gzip-bomb gzip-bomb "$BOMB_GIB"
case_ zstd-bomb zstd-bomb "$BOMB_GIB"
case_ files files "$FILES"
case_ layers layers "$LAYERS"
case_ pax pax 100

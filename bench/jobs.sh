#!/bin/bash
# bench/jobs.sh - the speed-up from reading layers one at a time to one per core.
#
# From the cached Debian minbase rootfs (see bench/common.sh), builds once an image of the same
# files cut into 40 independent gzip layers (bench/split-image.py), the shape of an OS image's
# chunks. Then, on a tmpfs, times RUNS runs (median) of `ocitree import --jobs 1` and
# `--jobs $(nproc)` into a fresh bare-user and a fresh archive repo, and prints each time, peak
# RSS and the ratio jobs-1 / jobs-N (above 1: reading layers at once is faster). Both imports
# must give the same image commit; the script fails otherwise.
#
# Usage: bash bench/jobs.sh [--runs N] [--layers N]    (as root; OCITREE_BIN to skip the build)
set -euo pipefail
RUNS=3
NLAYERS=40
while [ $# -gt 0 ]; do
  case "$1" in
    --runs) RUNS=$2; shift 2 ;;
    --layers) NLAYERS=$2; shift 2 ;;
    *) echo "usage: $0 [--runs N] [--layers N]" >&2; exit 2 ;;
  esac
done
source "$(dirname "$0")/common.sh"

SPLIT=$CACHE/images/debian-$NLAYERS
if [ ! -f "$SPLIT/index.json" ]; then
  echo "building the $NLAYERS-layer debian image (once)..." >&2
  rm -rf "$SPLIT.tmp"
  python3 "$HERE/split-image.py" "$CACHE/rootfs.tar" "$SPLIT.tmp" "$NLAYERS"
  mv "$SPLIT.tmp" "$SPLIT"
fi
cp -a "$SPLIT" "$T/split"
CORES=$(nproc)

for mode in bare-user archive; do
  for jobs in 1 "$CORES"; do
    for _ in $(seq "$RUNS"); do
      rm -rf "$T/r"
      ostree --repo="$T/r" init --mode="$mode"
      measure "$mode-$jobs" "$OCITREE_BIN" --repo "$T/r" import --jobs "$jobs" "oci:$T/split:latest" img
      ostree --repo="$T/r" rev-parse ocitree/image/img >> "$T/$mode.commits"
    done
  done
  [ "$(sort -u "$T/$mode.commits" | wc -l)" = 1 ] || { echo "FAILED: --jobs changed the commit" >&2; exit 1; }
done

printf '\n== %s layers, median of %s runs on tmpfs, %s cores ==\n' "$NLAYERS" "$RUNS" "$CORES"
for mode in bare-user archive; do
  one=$(secs "$mode-1"); all=$(secs "$mode-$CORES")
  printf '%-10s --jobs 1: %7s s %8s KiB   --jobs %s: %7s s %8s KiB   speed-up %.2fx\n' \
    "$mode" "$one" "$(rss "$mode-1")" "$CORES" "$all" "$(rss "$mode-$CORES")" "$(echo "$one / $all" | bc -l)"
done

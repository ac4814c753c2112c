#!/bin/bash
# bench/import.sh - import speed and memory of ocitree against the peer tools, from one run.
#
# Builds (once, cached in $OCITREE_BENCH_CACHE, default /var/tmp/ocitree-bench) a Debian minbase
# rootfs with mmdebstrap (uses the configured Debian mirror) and from it the 3-layer `debian` OCI
# image of bench/debian-image.sh. Then, on a tmpfs, times RUNS runs (median) of:
#   ocitree   ocitree import oci:debian:latest into a fresh bare-user repo
#   tar       ostree commit --tree=tar=LAYER of each of the same 3 gzip blobs (summed)
#   umoci     umoci unpack of the image + ostree commit --tree=dir= of the rootfs
#   reimport  ocitree import of the same image again (reads no layer)
# and prints each time, peak RSS, and the ratios tar/ocitree and umoci/ocitree (>1: ocitree is
# faster). With --archive, the same into archive repos (ocitree compresses objects on every
# core at the repo's core.zlib-level; ostree commit on one), and the ratio archive/bare-user
# of ocitree's import. Then the memory check: peak RSS importing single-layer images of 64 MiB and 512 MiB
# of incompressible data (the ratio should be ~1: memory flat in layer size).
#
# Usage: bash bench/import.sh [--runs N] [--archive]     (as root; OCITREE_BIN to skip the build)
set -euo pipefail
RUNS=3
ARCHIVE=0
while [ $# -gt 0 ]; do
  case "$1" in
    --runs) RUNS=$2; shift 2 ;;
    --archive) ARCHIVE=1; shift ;;
    *) echo "usage: $0 [--runs N] [--archive]" >&2; exit 2 ;;
  esac
done
source "$(dirname "$0")/common.sh"

run_mode() {
  local mode=$1 sfx=$2
  for _ in $(seq "$RUNS"); do
    rm -rf "$T/r"
    ostree --repo="$T/r" init --mode="$mode"
    measure "ocitree$sfx" "$OCITREE_BIN" --repo "$T/r" import "oci:$IMG:latest" debian
    measure "reimport$sfx" "$OCITREE_BIN" --repo "$T/r" import "oci:$IMG:latest" debian

    rm -rf "$T/r"
    ostree --repo="$T/r" init --mode="$mode"
    : > "$T/tar.one"
    start=$(date +%s.%N); peak=0
    for i in "${!LAYERS[@]}"; do
      /usr/bin/time -f '%e %M' -o "$T/time.out" ostree --repo="$T/r" commit -b "l$i" --tar-autocreate-parents \
        --tree=tar="$IMG/blobs/sha256/${LAYERS[$i]}" >/dev/null
      m=$(awk '{print $2}' "$T/time.out"); [ "$m" -gt "$peak" ] && peak=$m
    done
    end=$(date +%s.%N)
    echo "$(echo "$end - $start" | bc) $peak" >> "$T/tar$sfx.times"

    rm -rf "$T/r" "$T/bundle"
    ostree --repo="$T/r" init --mode="$mode"
    start=$(date +%s.%N)
    /usr/bin/time -f '%e %M' -o "$T/time.a" umoci unpack --image "$IMG:latest" "$T/bundle" >/dev/null 2>&1
    /usr/bin/time -f '%e %M' -o "$T/time.b" ostree --repo="$T/r" commit -b img --tree=dir="$T/bundle/rootfs" >/dev/null
    end=$(date +%s.%N)
    peak=$(cat "$T/time.a" "$T/time.b" | awk '{print $2}' | sort -n | tail -1)
    echo "$(echo "$end - $start" | bc) $peak" >> "$T/umoci$sfx.times"
    rm -rf "$T/bundle"
  done
}

report() {
  local sfx=$1 label=$2
  local o t u r
  o=$(secs "ocitree$sfx"); t=$(secs "tar$sfx"); u=$(secs "umoci$sfx"); r=$(secs "reimport$sfx")
  printf '\n== %s repo, median of %s runs on tmpfs ==\n' "$label" "$RUNS"
  printf '%-44s %8s s  %8s KiB peak RSS\n' "ocitree import" "$o" "$(rss "ocitree$sfx")"
  printf '%-44s %8s s  %8s KiB\n' "ostree commit --tree=tar= (3 layers)" "$t" "$(rss "tar$sfx")"
  printf '%-44s %8s s  %8s KiB\n' "umoci unpack + ostree commit --tree=dir=" "$u" "$(rss "umoci$sfx")"
  printf '%-44s %8s s  %8s KiB\n' "ocitree re-import (no layer read)" "$r" "$(rss "reimport$sfx")"
  printf 'ratio ostree-commit-tar / ocitree: %.2fx\n' "$(echo "$t / $o" | bc -l)"
  printf 'ratio umoci+commit / ocitree:     %.2fx\n' "$(echo "$u / $o" | bc -l)"
}

echo "layers (gzip blob bytes / uncompressed tar bytes):"
for l in "${LAYERS[@]}"; do
  printf '  %s %10s / %10s\n' "${l:0:12}" "$(stat -c %s "$IMG/blobs/sha256/$l")" "$(gzip -dc "$IMG/blobs/sha256/$l" | wc -c)"
done
run_mode bare-user ""
report "" bare-user
if [ "$ARCHIVE" = 1 ]; then
  run_mode archive "-archive"
  report "-archive" archive
  # Serving needs an archive repo: its import should cost little more than bare-user's
  # (objects are compressed on every core; target within 1.5x).
  printf 'ratio ocitree archive / bare-user:  %.2fx (target <= 1.5)\n' \
    "$(echo "$(secs ocitree-archive) / $(secs ocitree)" | bc -l)"
  printf 'ratio ostree-commit-tar archive / ocitree archive: %.2fx\n' \
    "$(echo "$(secs tar-archive) / $(secs ocitree-archive)" | bc -l)"
fi

# memory flatness: one big file of incompressible data per layer
for mb in 64 512; do
  d="$T/big$mb"; mkdir -p "$d/rootfs"
  head -c "${mb}M" /dev/urandom > "$d/rootfs/blob.bin"
  tar -C "$d/rootfs" -cf "$d/layer.tar" blob.bin
  umoci init --layout "$d/img" && umoci new --image "$d/img:latest"
  umoci raw add-layer --image "$d/img:latest" "$d/layer.tar"
  rm -f "$d/layer.tar" "$d/rootfs/blob.bin"
  rm -rf "$T/r"; ostree --repo="$T/r" init --mode=bare-user
  measure "big$mb" "$OCITREE_BIN" --repo "$T/r" import "oci:$d/img:latest" big
  rm -rf "$d" "$T/r"
done
printf '\n== memory: peak RSS of ocitree import of one big file ==\n'
printf '64 MiB layer:  %8s KiB\n512 MiB layer: %8s KiB\nratio 512/64:  %.2f (flat = 1)\n' \
  "$(rss big64)" "$(rss big512)" "$(echo "$(rss big512) / $(rss big64)" | bc -l)"

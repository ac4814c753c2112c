#!/bin/bash
# bench/os-image.sh - importing an OS image ("ostree native container", as bootc and
# rpm-ostree images are) with ocitree against ostree-ext itself.
#
# Builds once, cached in $OCITREE_BENCH_CACHE: the Debian minbase rootfs of bench/common.sh
# committed with `ostree.bootable` (its /etc moved to /usr/etc, as OS commits have it) and
# encapsulated by ostree-ext's own CLI (bench/ostree-ext-cli) into ~40 chunks (`--contentmeta`:
# one component per group of top-level paths). Then, on a tmpfs, times RUNS runs (median) of:
#   ocitree     ocitree import --jobs $(nproc) of the image into a fresh bare-user repo
#   ocitree-j1  the same with --jobs 1
#   ostree-ext  ostree-ext-cli container unencapsulate of the same image into a fresh repo
# checks that all three give the commit ostree-ext encapsulated (identical checksum), and prints
# times, peak RSS and the ratios ostree-ext / ocitree (above 1: ocitree is faster).
#
# Usage: bash bench/os-image.sh [--runs N]     (as root; OCITREE_BIN to skip the build)
set -euo pipefail
RUNS=3
while [ $# -gt 0 ]; do
  case "$1" in
    --runs) RUNS=$2; shift 2 ;;
    *) echo "usage: $0 [--runs N]" >&2; exit 2 ;;
  esac
done
source "$(dirname "$0")/common.sh"
OE=${OSTREE_EXT_CLI:-$(bash "$HERE/ostree-ext-cli/build.sh")}

OS=$CACHE/images/os
if [ ! -f "$OS/index.json" ]; then
  echo "building the OS image with ostree-ext (once)..." >&2
  W=$(mktemp -d /var/tmp/ocitree-os.XXXXXX)
  mkdir "$W/tree"
  tar -xf "$CACHE/rootfs.tar" -C "$W/tree" --exclude='./dev/*'
  mkdir -p "$W/tree/usr"
  mv "$W/tree/etc" "$W/tree/usr/etc"
  ostree --repo="$W/repo" init --mode=archive
  ostree --repo="$W/repo" commit -b os --tree=dir="$W/tree" --subject="debian minbase" \
    --add-metadata-string=version=1.0 --add-metadata=ostree.bootable=true \
    --timestamp=2026-01-01T00:00:00Z >/dev/null
  # ~40 components: each file goes to the bucket of its first three path segments.
  ostree --repo="$W/repo" ls -R -C os | awk '$1 !~ /^d/ {print $5, $6}' |
    while read -r csum path; do
      key=$(echo "$path" | cut -d/ -f1-4)
      echo "$csum c$(( $(echo "$key" | cksum | cut -d' ' -f1) % 40 ))"
    done |
    jq -R -s '[split("\n")[] | select(length > 0) | split(" ")]
      | {version: 1,
         layers: (map({key: .[1], value: .[1]}) | from_entries),
         mapping: (map({key: .[0], value: .[1]}) | from_entries)}' >"$W/meta.json"
  rm -rf "$OS.tmp"
  "$OE" container encapsulate --repo="$W/repo" --contentmeta="$W/meta.json" os "oci:$OS.tmp:latest" >/dev/null
  ostree --repo="$W/repo" rev-parse os >"$OS.tmp/commit.txt"
  rm -rf "$W"
  mv "$OS.tmp" "$OS"
fi
cp -a "$OS" "$T/os"
WANT=$(cat "$T/os/commit.txt")
NLAYERS=$(jq -r '.manifests[0].digest' "$T/os/index.json" | cut -d: -f2 |
  xargs -I{} jq '.layers | length' "$T/os/blobs/sha256/{}")
CORES=$(nproc)

check() {
  local got
  got=$(ostree --repo="$T/r" rev-parse "$1")
  [ "$got" = "$WANT" ] || { echo "FAILED: $2 gave $got, not $WANT" >&2; exit 1; }
}
for _ in $(seq "$RUNS"); do
  rm -rf "$T/r"; ostree --repo="$T/r" init --mode=bare-user
  measure ocitree "$OCITREE_BIN" --repo "$T/r" import "oci:$T/os:latest" os
  check ocitree/image/os ocitree
  rm -rf "$T/r"; ostree --repo="$T/r" init --mode=bare-user
  measure ocitree-j1 "$OCITREE_BIN" --repo "$T/r" import --jobs 1 "oci:$T/os:latest" os
  check ocitree/image/os "ocitree --jobs 1"
  rm -rf "$T/r"; ostree --repo="$T/r" init --mode=bare-user
  measure ostree-ext "$OE" container unencapsulate --quiet --repo "$T/r" --write-ref os "ostree-unverified-image:oci:$T/os:latest"
  check os ostree-ext
done

o=$(secs ocitree); j=$(secs ocitree-j1); e=$(secs ostree-ext)
printf '\n== OS image: %s layers, median of %s runs on tmpfs, %s cores ==\n' "$NLAYERS" "$RUNS" "$CORES"
printf '%-46s %8s s  %8s KiB peak RSS\n' "ocitree import (--jobs $CORES)" "$o" "$(rss ocitree)"
printf '%-46s %8s s  %8s KiB\n' "ocitree import --jobs 1" "$j" "$(rss ocitree-j1)"
printf '%-46s %8s s  %8s KiB\n' "ostree-ext-cli container unencapsulate" "$e" "$(rss ostree-ext)"
printf 'ratio ostree-ext / ocitree:          %.2fx\n' "$(echo "$e / $o" | bc -l)"
printf 'ratio ostree-ext / ocitree --jobs 1: %.2fx\n' "$(echo "$e / $j" | bc -l)"
printf 'speed-up --jobs 1 -> %s:            %.2fx\n' "$CORES" "$(echo "$j / $o" | bc -l)"

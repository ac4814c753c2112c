#!/bin/bash
# bench/debian-image.sh - builds the benchmarks' 3-layer `debian` OCI image with umoci.
#
# Usage: bash bench/debian-image.sh ROOTFS_TAR LAYOUT      (as root: owners survive unpack)
#
#   layer 1  ROOTFS_TAR as it is (`umoci raw add-layer`), e.g. mmdebstrap's minbase tar
#   layer 2  umoci's diff after unpack + change + repack: usr/share/doc and usr/share/man
#            removed (whiteouts), etc/motd replaced, opt/app/README added
#   layer 3  `umoci insert --whiteout /usr/share/locale`
# Tag: latest. Layer digests vary from build to build (umoci records mtimes).
set -euo pipefail
ROOTFS_TAR=${1:?usage: debian-image.sh ROOTFS_TAR LAYOUT}
IMG=${2:?usage: debian-image.sh ROOTFS_TAR LAYOUT}
WORK=$(mktemp -d)
trap 'rm -rf "$WORK"' EXIT
rm -rf "$IMG"; mkdir -p "$(dirname "$IMG")"
umoci init --layout "$IMG"
umoci new --image "$IMG:latest"
umoci raw add-layer --image "$IMG:latest" "$ROOTFS_TAR" >/dev/null
umoci unpack --image "$IMG:latest" "$WORK/bundle" >/dev/null
ROOT=$WORK/bundle/rootfs
rm -rf "$ROOT/usr/share/doc" "$ROOT/usr/share/man"
echo "ocitree benchmark image" > "$ROOT/etc/motd"
mkdir -p "$ROOT/opt/app"
echo app > "$ROOT/opt/app/README"
umoci repack --image "$IMG:latest" "$WORK/bundle" >/dev/null
umoci insert --image "$IMG:latest" --whiteout /usr/share/locale >/dev/null

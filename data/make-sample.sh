#!/bin/bash
# make-sample.sh - rebuilds data/sample, the tiny OCI image layout (a few KB) that the README demo
# (data/demo.sh) and the integration tests import. The layout is committed: nothing else needs umoci.
#
#   tag v1: L1 base (dirs, files, an executable, a symlink, a hardlink, an empty dir, a user.*
#           xattr), L2 app (adds opt/app, changes etc/motd, deletes usr/share/doc/old => .wh.old)
#   tag v2: the same L1 and L2 blobs + L3 (changes opt/app/README, adds a file, whiteout of
#           etc/motd) — so importing v1 then v2 reuses two layers and imports one.
#
# Reproducible: file mtimes, config `created` and every history `created` are fixed, so rerunning
# it with the same umoci (Debian 12: 0.4.7) rewrites byte-identical blobs; another umoci (another
# gzip) may change the layer digests, and with them every digest above them.
#
# Needs root (umoci unpack/repack keep owners), umoci and setfattr (package attr), and user xattrs
# on the filesystem of $TMPDIR. Usage: bash data/make-sample.sh   (rewrites data/sample in place)
set -euo pipefail
cd "$(dirname "$0")"
[ "$(id -u)" = 0 ] || { echo "make-sample.sh: run as root" >&2; exit 1; }
for t in umoci setfattr; do
  command -v "$t" >/dev/null || { echo "make-sample.sh: $t not found" >&2; exit 1; }
done
OUT=sample
W=$(mktemp -d); trap 'rm -rf "$W"' EXIT
export SOURCE_DATE_EPOCH=1700000000
fix_times() { find "$1" -exec touch -h -d @1700000000 {} +; }
rm -rf "$OUT"
umoci init --layout "$OUT"
umoci new --image "$OUT:v1"
umoci config --image "$OUT:v1" --author "ocitree sample" --config.cmd /usr/bin/hello \
  --created 2023-11-14T22:13:20Z --history.created 2023-11-14T22:13:20Z >/dev/null

umoci unpack --image "$OUT:v1" "$W/b" >/dev/null
R="$W/b/rootfs"
mkdir -p "$R"/etc "$R"/usr/bin "$R"/usr/lib "$R"/usr/share/doc "$R"/var/empty
printf 'NAME="ocitree sample"\nVERSION_ID=1\n' > "$R/etc/os-release"
echo "Welcome to the ocitree sample image (v1)." > "$R/etc/motd"
printf '#!/bin/sh\necho "hello from the ocitree sample"\n' > "$R/usr/bin/hello"; chmod 0755 "$R/usr/bin/hello"
ln "$R/usr/bin/hello" "$R/usr/bin/hi"
echo "libsample" > "$R/usr/lib/libsample.so.1"; ln -s libsample.so.1 "$R/usr/lib/libsample.so"
echo "old notes" > "$R/usr/share/doc/old"
setfattr -n user.sample -v base "$R/etc/os-release"
fix_times "$R"
umoci repack --image "$OUT:v1" --history.created 2023-11-14T22:13:20Z "$W/b" >/dev/null
rm -rf "$W/b"

umoci unpack --image "$OUT:v1" "$W/b" >/dev/null
R="$W/b/rootfs"
mkdir -p "$R/opt/app"
echo "app 1.0" > "$R/opt/app/README"
echo "Welcome to the ocitree sample image (with app)." > "$R/etc/motd"
rm "$R/usr/share/doc/old"
fix_times "$R"
umoci repack --image "$OUT:v1" --history.created 2023-11-14T22:13:20Z "$W/b" >/dev/null
rm -rf "$W/b"

umoci tag --image "$OUT:v1" v2
umoci unpack --image "$OUT:v2" "$W/b" >/dev/null
R="$W/b/rootfs"
echo "app 2.0" > "$R/opt/app/README"
echo "new in v2" > "$R/opt/app/CHANGES"
rm "$R/etc/motd"
fix_times "$R"
umoci repack --image "$OUT:v2" --history.created 2023-11-14T22:14:00Z "$W/b" >/dev/null
# no history entry: it would carry the wall-clock time
umoci config --image "$OUT:v2" --created 2023-11-14T22:14:00Z --no-history >/dev/null
umoci gc --layout "$OUT"
# umoci writes blobs 0600; give them the modes a git checkout has
chmod -R u=rwX,go=rX "$OUT"
umoci ls --layout "$OUT"

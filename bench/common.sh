# bench/common.sh - sourced by the benchmarks: tools check, ocitree build, the cached Debian
# image, a tmpfs work dir ($T) holding a copy of it ($IMG), and timing helpers.
# Expects RUNS to be set. Sets TOP, CACHE, OCITREE_BIN, IMG, T, MANIFEST, LAYERS.
HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
TOP=$(dirname "$HERE")
CACHE=${OCITREE_BENCH_CACHE:-/var/tmp/ocitree-bench}
mkdir -p "$CACHE"
for t in mmdebstrap umoci ostree jq gzip /usr/bin/time bc; do
  command -v "$t" >/dev/null || { echo "missing $t: run bash .ci/deps" >&2; exit 1; }
done

if [ -z "${OCITREE_BIN:-}" ]; then
  (cd "$TOP" && cargo build --release --quiet)
  OCITREE_BIN=$TOP/target/release/ocitree
fi

if [ ! -s "$CACHE/rootfs.tar" ]; then
  echo "building Debian minbase rootfs (once)..." >&2
  # --format=tar: the .tmp suffix would otherwise make mmdebstrap write a directory
  mmdebstrap --variant=minbase --format=tar --skip=output/dev bookworm "$CACHE/rootfs.tar.tmp" >&2
  mv "$CACHE/rootfs.tar.tmp" "$CACHE/rootfs.tar"
fi
if [ ! -f "$CACHE/images/debian/index.json" ]; then
  echo "building the 3-layer debian image (once)..." >&2
  bash "$HERE/debian-image.sh" "$CACHE/rootfs.tar" "$CACHE/images/debian" >&2
fi

T=$(mktemp -d /tmp/ocitree-bench.XXXXXX)
cleanup() { umount "$T" 2>/dev/null || true; rm -rf "$T"; }
trap cleanup EXIT
mount -t tmpfs -o size=8g tmpfs "$T" 2>/dev/null || { echo "(no tmpfs mount; using $T on disk)" >&2; }
cp -a "$CACHE/images/debian" "$T/img"
IMG=$T/img
MANIFEST=$(jq -r '.manifests[0].digest' "$IMG/index.json" | cut -d: -f2)
mapfile -t LAYERS < <(jq -r '.layers[].digest' "$IMG/blobs/sha256/$MANIFEST" | cut -d: -f2)

# measure NAME CMD...: runs CMD with GNU time, appends "secs kb" to $T/NAME.times
measure() {
  local name=$1; shift
  /usr/bin/time -f '%e %M' -o "$T/time.out" "$@" >/dev/null 2>"$T/err.out" || {
    echo "FAILED: $*" >&2; cat "$T/err.out" >&2; exit 1; }
  cat "$T/time.out" >> "$T/$name.times"
}
# measure_sh NAME SCRIPT: as measure, for a shell pipeline (peak RSS of the shell's children)
measure_sh() { measure "$1" bash -c "$2"; }
median() { sort -n | awk '{a[NR]=$1} END {print a[int((NR+1)/2)]}'; }
secs() { awk '{print $1}' "$T/$1.times" | median; }
rss() { awk '{print $2}' "$T/$1.times" | sort -n | tail -1; }

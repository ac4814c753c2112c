#!/bin/bash
# bench/exact-gzip.sh - what the exact-gzip feature costs and keeps, from one run.
#
# Builds ocitree twice (default features, and --features exact-gzip), then makes single-layer
# images of the cached Debian minbase tar (see bench/import.sh; built with mmdebstrap if missing)
# compressed by different tools, plus the Go-made images:
#   gzip-6     GNU gzip -6 -n
#   gzip-9     GNU gzip -9 -n
#   pigz-6     pigz -6 (2 threads)
#   zlib-6     Python's zlib (the C library), level 6
#   umoci      the 3-layer `debian` image of bench/debian-image.sh (umoci: Go pgzip)
#   skopeo     the tar as an uncompressed layer, copied by skopeo with gzip compression (Go)
#   ocitree    the `umoci` image exported by ocitree (its own deterministic gzip)
# For each, on a tmpfs: import with both builds (time, peak RSS), the layers whose exact bytes
# were kept and the size of their data as % of their blobs, export with both builds (time), and
# whether the exported manifest digest equals the original.
#
# Usage: bash bench/exact-gzip.sh [--runs N] [--only NAME...]   (as root, after bash .ci/deps)
set -euo pipefail
RUNS=1
ONLY=()
while [ $# -gt 0 ]; do
  case "$1" in
    --runs) RUNS=$2; shift 2 ;;
    --only) shift; ONLY=("$@"); break ;;
    *) echo "usage: $0 [--runs N] [--only NAME...]" >&2; exit 2 ;;
  esac
done
HERE=$(cd "$(dirname "$0")" && pwd)
TOP=$(dirname "$HERE")
for t in skopeo pigz python3; do
  command -v "$t" >/dev/null || { echo "missing $t: run bash .ci/deps" >&2; exit 1; }
done
if [ -z "${OCITREE_PLAIN:-}" ] || [ -z "${OCITREE_EXACT:-}" ]; then
  echo "building ocitree with and without exact-gzip..." >&2
  (cd "$TOP" && cargo build --release --locked --quiet --features exact-gzip)
  cp "$TOP/target/release/ocitree" "$TOP/target/release/ocitree-exact"
  (cd "$TOP" && cargo build --release --locked --quiet)
  OCITREE_PLAIN=$TOP/target/release/ocitree
  OCITREE_EXACT=$TOP/target/release/ocitree-exact
fi
# the cached Debian tar and image, the tmpfs $T with the image in $IMG, timing helpers
OCITREE_BIN=$OCITREE_PLAIN
# shellcheck source=bench/common.sh
source "$HERE/common.sh"
TAR=$T/rootfs.tar
cp "$CACHE/rootfs.tar" "$TAR"

# layout DIR TAR BLOB MEDIATYPE: a one-layer OCI layout tagged latest
layout() {
  python3 - "$@" <<'EOF'
import hashlib, json, os, sys
out, tar, blob, media = sys.argv[1:5]
def sha(path):
    h = hashlib.sha256()
    with open(path, 'rb') as f:
        for b in iter(lambda: f.read(1 << 20), b''):
            h.update(b)
    return 'sha256:' + h.hexdigest()
os.makedirs(out + '/blobs/sha256', exist_ok=True)
def put(data):
    d = 'sha256:' + hashlib.sha256(data).hexdigest()
    open(out + '/blobs/sha256/' + d[7:], 'wb').write(data)
    return d, len(data)
bd = sha(blob)
os.rename(blob, out + '/blobs/sha256/' + bd[7:])
config = {"architecture": "amd64", "os": "linux", "created": "2024-01-01T00:00:00Z",
          "rootfs": {"type": "layers", "diff_ids": [sha(tar)]}}
cd, cs = put(json.dumps(config).encode())
manifest = {"schemaVersion": 2, "mediaType": "application/vnd.oci.image.manifest.v1+json",
            "config": {"mediaType": "application/vnd.oci.image.config.v1+json", "digest": cd, "size": cs},
            "layers": [{"mediaType": media, "digest": bd,
                        "size": os.path.getsize(out + '/blobs/sha256/' + bd[7:])}]}
md, ms = put(json.dumps(manifest).encode())
open(out + '/oci-layout', 'w').write('{"imageLayoutVersion":"1.0.0"}')
open(out + '/index.json', 'w').write(json.dumps({"schemaVersion": 2, "manifests": [
    {"mediaType": "application/vnd.oci.image.manifest.v1+json", "digest": md, "size": ms,
     "annotations": {"org.opencontainers.image.ref.name": "latest"}}]}))
EOF
}

GZ=application/vnd.oci.image.layer.v1.tar+gzip
declare -A WHAT
make_image() {
  local name=$1
  case "$name" in
    gzip-6) gzip -6 -n < "$TAR" > "$T/blob"; layout "$T/$name" "$TAR" "$T/blob" $GZ ;;
    gzip-9) gzip -9 -n < "$TAR" > "$T/blob"; layout "$T/$name" "$TAR" "$T/blob" $GZ ;;
    pigz-6) pigz -6 -n -p 2 < "$TAR" > "$T/blob"; layout "$T/$name" "$TAR" "$T/blob" $GZ ;;
    zlib-6)
      python3 -c 'import sys, zlib
c = zlib.compressobj(6, zlib.DEFLATED, 31)
for b in iter(lambda: sys.stdin.buffer.read(1 << 20), b""):
    sys.stdout.buffer.write(c.compress(b))
sys.stdout.buffer.write(c.flush())' < "$TAR" > "$T/blob"
      layout "$T/$name" "$TAR" "$T/blob" $GZ ;;
    umoci) cp -a "$IMG" "$T/$name" ;;
    skopeo)
      cp "$TAR" "$T/plain.tar"
      layout "$T/plain" "$TAR" "$T/plain.tar" application/vnd.oci.image.layer.v1.tar
      skopeo copy -q --dest-compress-format gzip "oci:$T/plain:latest" "oci:$T/$name:latest" >&2
      rm -rf "$T/plain" ;;
    ocitree)
      rm -rf "$T/r"
      "$OCITREE_PLAIN" --repo "$T/r" import "oci:$IMG:latest" deb >/dev/null
      "$OCITREE_PLAIN" --repo "$T/r" export deb "oci:$T/$name:latest" >/dev/null
      rm -rf "$T/r" ;;
  esac
}

# timed NAME CMD...: runs CMD, appends "secs kb user sys" to $T/NAME.times, keeps its output
timed() {
  local name=$1; shift
  /usr/bin/time -f '%e %M %U %S' -o "$T/time.out" "$@" >"$T/out" 2>&1 || {
    echo "FAILED: $*" >&2; cat "$T/out" >&2; exit 1; }
  cat "$T/time.out" >> "$T/$name.times"
}
cpu() { awk '{print $3 + $4}' "$T/$1.times" | median; }

NAMES=(gzip-6 gzip-9 pigz-6 zlib-6 umoci skopeo ocitree)
[ ${#ONLY[@]} -gt 0 ] && NAMES=("${ONLY[@]}")
echo "preflate-rs $(grep -A1 'name = "preflate-rs"' "$TOP/Cargo.lock" | sed -n 's/version = "\(.*\)"/\1/p'); Debian tar $(stat -c %s "$TAR") bytes; median of $RUNS run(s) on tmpfs"
printf '%-7s %6s %9s %9s %6s %6s %8s %8s %9s %9s %s\n' image layers blobMB imp-off imp-on ratio "exact" "data%" exp-off exp-on "manifest(on)"
for name in "${NAMES[@]}"; do
  make_image "$name"
  IM=$T/$name
  M=$(jq -r '.manifests[0].digest' "$IM/index.json")
  BLOBS=$(jq -r '.layers[].size' "$IM/blobs/sha256/${M#sha256:}" | paste -sd+ | bc)
  NL=$(jq -r '.layers | length' "$IM/blobs/sha256/${M#sha256:}")
  for _ in $(seq "$RUNS"); do
    for b in plain exact; do
      bin=$OCITREE_PLAIN; [ $b = exact ] && bin=$OCITREE_EXACT
      rm -rf "$T/r-$b" "$T/o-$b"
      ostree --repo="$T/r-$b" init --mode=bare-user
      timed "$name-imp-$b" "$bin" --repo "$T/r-$b" import "oci:$IM:latest" img
      [ $b = exact ] && cp "$T/out" "$T/import-$name.out"
      timed "$name-exp-$b" "$bin" --repo "$T/r-$b" export img "oci:$T/o-$b:latest"
      [ $b = exact ] && cp "$T/out" "$T/export-$name.out"
    done
  done
  # "Exact:    K of N gzip layers can be exported bit for bit (B bytes of data, P% of their blobs)"
  EX=$(sed -n 's/^Exact: *\([0-9]*\) of \([0-9]*\).*/\1\/\2/p' "$T/import-$name.out")
  PCT=$(sed -n 's/^Exact:.*, \([0-9.]*\)% of their blobs.*/\1/p' "$T/import-$name.out")
  BYTES=$(sed -n 's/^Exact:.*(\([0-9]*\) bytes of data.*/\1/p' "$T/import-$name.out")
  if grep -q "manifest digest unchanged" "$T/export-$name.out"; then KEPT=same; else KEPT=changed; fi
  printf '%-7s %6s %9.1f %8ss %5ss %5.2fx %8s %8s %8ss %8ss %s\n' "$name" "$NL" \
    "$(echo "$BLOBS / 1048576" | bc -l)" "$(secs "$name-imp-plain")" "$(secs "$name-imp-exact")" \
    "$(echo "$(secs "$name-imp-exact") / $(secs "$name-imp-plain")" | bc -l)" "${EX:-0/0}" \
    "${PCT:--}" "$(secs "$name-exp-plain")" "$(secs "$name-exp-exact")" "$KEPT"
  sed -n 's/^note: layer \(sha256:.\{12\}\).*bit for bit (\(.*\)); export.*/    \1 not kept: \2/p' \
    "$T/import-$name.out"
  echo "    exact data: ${BYTES:-0} bytes; CPU s import off/on: $(cpu "$name-imp-plain")/$(cpu "$name-imp-exact"), export off/on: $(cpu "$name-exp-plain")/$(cpu "$name-exp-exact")"
  echo "    peak RSS KiB import off/on: $(rss "$name-imp-plain")/$(rss "$name-imp-exact"), export off/on: $(rss "$name-exp-plain")/$(rss "$name-exp-exact")"
  rm -rf "$IM" "$T/r-plain" "$T/r-exact" "$T/o-plain" "$T/o-exact"
done

#!/bin/bash
# bench/os-image.sh - OS images (ostree native containers, issue 10): ocitree against ostree-ext
# on the same bootable commit, from one run.
#
# Imports the cached Debian image (see common.sh) into a bare-user repo on a tmpfs and commits its
# tree again as `os` with `ostree.bootable` (a boolean, as `ostree commit --bootable` writes it)
# and `version`. A contentmeta file maps every content object to one of COMPONENTS (default 40)
# components (directories two levels deep, e.g. usr/lib, then usr/share/..., dealt round-robin
# by size: the stand-in for packages). Then it times RUNS runs (median) of:
#   encap-single      ocitree encapsulate --format ostree-native os         (one layer)
#   oe-encap-single   ostree-ext-cli container encapsulate os               (one layer)
#   encap-chunked     ocitree encapsulate --format ostree-native --max-layers COMPONENTS+1 os
#   oe-encap-chunked  ostree-ext-cli container encapsulate --contentmeta FILE os
#                     (its commit layer + one layer per component)
#   import            ocitree import of ostree-ext's chunked image into a fresh repo (one job
#                     per core: the chunks are independent layers, read at once)
#   import-j1         the same with --jobs 1 (the speed-up from more cores)
#   oe-unencap        ostree-ext-cli container unencapsulate of the same image into a fresh repo
# and prints seconds, peak RSS, layer count and bytes, and the ratios ostree-ext / ocitree (>1:
# ocitree is faster). Every output is checked to carry the same commit (ostree-ext reads
# ocitree's chunked image back; ocitree's import gives the commit ostree-ext encapsulated).
#
# Usage: bash bench/os-image.sh [--runs N] [--components N]   (as root; OCITREE_BIN to skip the
# build, OSTREE_EXT_CLI to skip building ostree-ext's CLI with bench/ostree-ext-cli/build.sh)
set -euo pipefail
RUNS=3
COMPONENTS=40
while [ $# -gt 0 ]; do
  case "$1" in
    --runs) RUNS=$2; shift 2 ;;
    --components) COMPONENTS=$2; shift 2 ;;
    *) echo "usage: $0 [--runs N] [--components N]" >&2; exit 2 ;;
  esac
done
source "$(dirname "$0")/common.sh"
OE=${OSTREE_EXT_CLI:-$(bash "$HERE/ostree-ext-cli/build.sh")}
command -v python3 >/dev/null || { echo "missing python3" >&2; exit 1; }

R=$T/r
ostree --repo="$R" init --mode=bare-user
"$OCITREE_BIN" --repo "$R" import "oci:$IMG:latest" debian >/dev/null
COMMIT=$(ostree --repo="$R" commit -b os --tree=ref=ocitree/image/debian \
  --timestamp=2024-01-01T00:00:00Z --subject="debian minbase OS" \
  --add-metadata=ostree.bootable=true --add-metadata-string=version=12)

# contentmeta: object -> component, COMPONENTS components of about equal size.
ostree --repo="$R" ls -R -C os | python3 -c '
import json, sys
n = int(sys.argv[1])
groups = {}
for line in sys.stdin:
    f = line.split()
    if line[0] not in "-l":
        continue
    size, csum, path = int(f[3]), f[4], f[5]
    key = "/".join(path.strip("/").split("/")[:2])
    g = groups.setdefault(key, [0, set()])
    g[0] += size
    g[1].add(csum)
comps = [[0, []] for _ in range(n)]
for key, (size, objs) in sorted(groups.items(), key=lambda kv: -kv[1][0]):
    c = min(comps, key=lambda c: c[0])
    c[0] += size
    c[1].extend(sorted(objs))
mapping = {}
for i, (_, objs) in enumerate(comps):
    for o in objs:
        mapping.setdefault(o, "c%02d" % i)
# Only components that own an object: ostree-ext panics on one that owns none.
used = sorted(set(mapping.values()))
json.dump({"version": 1, "layers": {c: c for c in used}, "mapping": mapping}, sys.stdout)
' "$COMPONENTS" > "$T/contentmeta.json"

layer_count() { local m; m=$(jq -r '.manifests[-1].digest' "$1/index.json" | cut -d: -f2); jq '.layers | length' "$1/blobs/sha256/$m"; }
layer_bytes() { local m; m=$(jq -r '.manifests[-1].digest' "$1/index.json" | cut -d: -f2); jq '[.layers[].size] | add' "$1/blobs/sha256/$m"; }
summary() { echo "$(layer_count "$1") layers, $(layer_bytes "$1") bytes" > "$T/$2.size"; }

for _ in $(seq "$RUNS"); do
  rm -rf "$T/o"*
  measure encap-single "$OCITREE_BIN" --repo "$R" encapsulate --format ostree-native os "oci:$T/o1:x"
  summary "$T/o1" encap-single
  measure oe-encap-single "$OE" container encapsulate --repo="$R" os "oci:$T/o2:x"
  summary "$T/o2" oe-encap-single
  measure encap-chunked "$OCITREE_BIN" --repo "$R" encapsulate --format ostree-native \
    --max-layers "$((COMPONENTS + 1))" os "oci:$T/o3:x"
  summary "$T/o3" encap-chunked
  measure oe-encap-chunked "$OE" container encapsulate --repo="$R" \
    --contentmeta="$T/contentmeta.json" os "oci:$T/o4:x"
  summary "$T/o4" oe-encap-chunked
  rm -rf "$T/i1" "$T/i2"
  measure import "$OCITREE_BIN" --repo "$T/i1" import "oci:$T/o4:x" os
  "$OCITREE_BIN" --repo "$T/i1" inspect os | jq -e --arg c "$COMMIT" '.commit == $c' >/dev/null
  rm -rf "$T/i1"
  measure import-j1 "$OCITREE_BIN" --repo "$T/i1" import --jobs 1 "oci:$T/o4:x" os
  "$OCITREE_BIN" --repo "$T/i1" inspect os | jq -e --arg c "$COMMIT" '.commit == $c' >/dev/null
  rm -rf "$T/i1"
  ostree --repo="$T/i2" init --mode=bare-user
  measure oe-unencap "$OE" container unencapsulate --quiet --repo="$T/i2" "ostree-unverified-image:oci:$T/o4:x"
  echo "1 image" > "$T/import.size"; cp "$T/import.size" "$T/import-j1.size"
  cp "$T/import.size" "$T/oe-unencap.size"
done
# ostree-ext reads ocitree's chunked image as the identical commit.
ostree --repo="$T/i3" init --mode=bare-user
"$OE" container unencapsulate --quiet --repo="$T/i3" "ostree-unverified-image:oci:$T/o3:x" | grep -q "$COMMIT"
rm -rf "$T/i3"

printf '\n== OS image (Debian minbase, bootable commit %s), median of %s runs ==\n' "${COMMIT:0:12}" "$RUNS"
printf '%-18s %8s %10s   %s\n' step seconds "peak KiB" output
for s in encap-single oe-encap-single encap-chunked oe-encap-chunked import import-j1 oe-unencap; do
  printf '%-18s %8s %10s   %s\n' "$s" "$(secs $s)" "$(rss $s)" "$(cat "$T/$s.size")"
done
ratio() { printf '%-36s %.2fx\n' "$1" "$(echo "$(secs "$2") / $(secs "$3")" | bc -l)"; }
echo
ratio "encapsulate, one layer (oe/ocitree)" oe-encap-single encap-single
ratio "encapsulate, chunked (oe/ocitree)" oe-encap-chunked encap-chunked
ratio "import of oe's chunked image (oe/ocitree)" oe-unencap import
ratio "import, --jobs 1 (oe/ocitree)" oe-unencap import-j1
ratio "import speed-up, --jobs 1 -> $(nproc)" import-j1 import

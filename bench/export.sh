#!/bin/bash
# bench/export.sh - export speed of ocitree against `ostree export | gzip`, from one run.
#
# Imports the cached 3-layer Debian image (see common.sh) into a bare-user repo on a tmpfs, then
# times RUNS runs (median) of:
#   export-gzip   ocitree export debian oci:DIR --compression gzip  (3 layers rebuilt from the repo)
#   export-zstd   ocitree export debian oci:DIR --compression zstd
#   encapsulate   ocitree encapsulate of the image's merged commit (when the command exists)
#   ostree-layers ostree export of each of the 3 layer commits piped through gzip -6: the same
#                 content as export-*, the baseline for them
#   ostree-merged ostree export of the merged commit piped through gzip -6: the baseline for
#                 encapsulate (the merged tree is smaller: the upper layers delete docs)
# and prints times, output sizes (layer blobs / .tar.gz) and the ratio baseline / ocitree
# (>1: ocitree is faster).
#
# Usage: bash bench/export.sh [--runs N]     (as root; OCITREE_BIN to skip the build)
set -euo pipefail
RUNS=3
while [ $# -gt 0 ]; do
  case "$1" in
    --runs) RUNS=$2; shift 2 ;;
    *) echo "usage: $0 [--runs N]" >&2; exit 2 ;;
  esac
done
source "$(dirname "$0")/common.sh"

ostree --repo="$T/r" init --mode=bare-user
"$OCITREE_BIN" --repo "$T/r" import "oci:$IMG:latest" debian >/dev/null
REV=$(ostree --repo="$T/r" rev-parse ocitree/image/debian)
mapfile -t LAYER_REVS < <(for l in "${LAYERS[@]}"; do ostree --repo="$T/r" rev-parse "ocitree/blob/sha256/$l"; done)
ENCAP=0
"$OCITREE_BIN" encapsulate --help >/dev/null 2>&1 && ENCAP=1

# blob bytes of the layers of DIR's only manifest
layer_bytes() {
  local m
  m=$(jq -r '.manifests[-1].digest' "$1/index.json" | cut -d: -f2)
  jq -r '.layers[].size' "$1/blobs/sha256/$m" | awk '{s+=$1} END {print s}'
}

for _ in $(seq "$RUNS"); do
  rm -rf "$T/out"
  measure export-gzip "$OCITREE_BIN" --repo "$T/r" export debian "oci:$T/out:x" --compression gzip
  layer_bytes "$T/out" > "$T/export-gzip.size"
  rm -rf "$T/out"
  measure export-zstd "$OCITREE_BIN" --repo "$T/r" export debian "oci:$T/out:x" --compression zstd
  layer_bytes "$T/out" > "$T/export-zstd.size"
  if [ "$ENCAP" = 1 ]; then
    rm -rf "$T/out"
    measure encapsulate "$OCITREE_BIN" --repo "$T/r" encapsulate "$REV" "oci:$T/out:x"
    layer_bytes "$T/out" > "$T/encapsulate.size"
  fi
  rm -rf "$T/out" "$T"/o*.tar.gz
  script=""
  for i in "${!LAYER_REVS[@]}"; do
    script+="ostree --repo='$T/r' export '${LAYER_REVS[$i]}' | gzip -6 > '$T/o$i.tar.gz'; "
  done
  measure_sh ostree-layers "set -e -o pipefail; $script"
  cat "$T"/o*.tar.gz | wc -c > "$T/ostree-layers.size"
  rm -f "$T"/o*.tar.gz
  measure_sh ostree-merged "set -e -o pipefail; ostree --repo='$T/r' export '$REV' | gzip -6 > '$T/o.tar.gz'"
  stat -c %s "$T/o.tar.gz" > "$T/ostree-merged.size"
done

row() { # row NAME BASELINE
  local s b
  s=$(secs "$1"); b=$(secs "$2")
  printf '%-36s %7s s %11s bytes   ratio %s/ocitree %.2fx\n' "ocitree $1" "$s" "$(cat "$T/$1.size")" "$2" "$(echo "$b / $s" | bc -l)"
}
printf '\n== export of the Debian image, median of %s runs on tmpfs ==\n' "$RUNS"
for b in ostree-layers ostree-merged; do
  printf '%-36s %7s s %11s bytes\n' "$b (| gzip -6)" "$(secs $b)" "$(cat "$T/$b.size")"
done
row export-gzip ostree-layers
row export-zstd ostree-layers
[ "$ENCAP" = 1 ] && row encapsulate ostree-merged
true

#!/bin/bash
# bench/pull.sh - registry pull speed of ocitree against skopeo + ocitree, from one run.
#
# Uses the 3-layer `debian` image of bench/common.sh (built once, cached). Starts Debian's
# docker-registry on 127.0.0.1 with its storage on the tmpfs, pushes the image with skopeo, then
# times RUNS runs (median), each into fresh bare-user repos, of:
#   ocitree   ocitree import docker://127.0.0.1:PORT/bench/debian:latest (native pull: 3
#             parallel downloads, each layer imported while it downloads)
#   skopeo    skopeo copy docker://… oci:DIR, then ocitree import oci:DIR (summed)
#   repull    ocitree import of the same reference again under another name (no layer fetched)
# and prints each time with peak RSS, and the ratio (skopeo + ocitree) / ocitree (>1: the
# native pull is faster).
#
# Usage: bash bench/pull.sh [--runs N]      (as root; OCITREE_BIN to skip the build)
set -euo pipefail
RUNS=3
while [ $# -gt 0 ]; do
  case "$1" in
    --runs) RUNS=$2; shift 2 ;;
    *) echo "usage: $0 [--runs N]" >&2; exit 2 ;;
  esac
done
for t in docker-registry skopeo curl python3; do
  command -v "$t" >/dev/null || { echo "missing $t: run bash .ci/deps" >&2; exit 1; }
done
source "$(dirname "$0")/common.sh"

REG_PID=
stop_registry() { [ -n "$REG_PID" ] && kill "$REG_PID" 2>/dev/null && wait "$REG_PID" 2>/dev/null; true; }
trap 'stop_registry; cleanup' EXIT
PORT=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
mkdir -p "$T/registry"
cat > "$T/registry/config.yml" <<YML
version: 0.1
log:
  level: error
storage:
  filesystem:
    rootdirectory: $T/registry/data
http:
  addr: 127.0.0.1:$PORT
YML
docker-registry serve "$T/registry/config.yml" > "$T/registry/log" 2>&1 &
REG_PID=$!
for _ in $(seq 100); do curl -sf "http://127.0.0.1:$PORT/v2/" >/dev/null && break; sleep 0.1; done
REF=127.0.0.1:$PORT/bench/debian:latest
skopeo copy -q --dest-tls-verify=false "oci:$IMG:latest" "docker://$REF"

for _ in $(seq "$RUNS"); do
  rm -rf "$T/r1" "$T/r2" "$T/pulled"
  measure ocitree "$OCITREE_BIN" --repo "$T/r1" import --tls-verify=false "docker://$REF" debian
  measure repull "$OCITREE_BIN" --repo "$T/r1" import --tls-verify=false "docker://$REF" again
  start=$(date +%s.%N)
  measure skopeo skopeo copy -q --src-tls-verify=false "docker://$REF" "oci:$T/pulled:latest"
  measure import "$OCITREE_BIN" --repo "$T/r2" import "oci:$T/pulled:latest" debian
  end=$(date +%s.%N)
  echo "$(echo "$end - $start" | bc) 0" >> "$T/both.times"
done

o=$(secs ocitree); b=$(printf "%.2f" "$(secs both)")
printf '\n== pull of the 3-layer debian image (%s bytes of blobs) from a loopback registry, median of %s runs ==\n' \
  "$(du -sb "$T/pulled/blobs" | cut -f1)" "$RUNS"
printf '%-44s %8s s  %8s KiB peak RSS\n' "ocitree import docker://" "$o" "$(rss ocitree)"
printf '%-44s %8s s  %8s KiB\n' "skopeo copy docker:// oci:" "$(secs skopeo)" "$(rss skopeo)"
printf '%-44s %8s s  %8s KiB\n' "  + ocitree import oci:" "$(secs import)" "$(rss import)"
printf '%-44s %8s s\n' "  = skopeo + ocitree" "$b"
printf '%-44s %8s s  %8s KiB\n' "ocitree re-pull (no layer fetched)" "$(secs repull)" "$(rss repull)"
printf 'ratio (skopeo + ocitree) / ocitree: %.2fx\n' "$(echo "$b / $o" | bc -l)"

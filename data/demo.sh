#!/bin/bash
# The README's demo: builds ocitree, then imports the two sample images of data/sample (tags v1
# and v2, which share their first two layers) into a fresh local repository and looks around.
# Usage: bash data/demo.sh [REPO]   (default ./ocitree-demo-repo; recreated on every run)
set -euo pipefail
cd "$(dirname "$0")/.."
REPO=${1:-./ocitree-demo-repo}
cargo build --release --quiet
ot() { echo "\$ ocitree $*" >&2; ./target/release/ocitree --repo "$REPO" "$@"; echo >&2; }
rm -rf "$REPO" ./ocitree-demo-checkout
ot init --mode bare-user
ot import oci:data/sample:v1 sample:v1
ot import oci:data/sample:v2 sample:v2          # shares two layers with v1: they are reused
ot import oci:data/sample:v2 sample:v2          # nothing new: no layer read, no object written
ot images
ot ls -R sample:v2 /opt
ot cat sample:v2 /opt/app/README
ot cat sample:v1 /etc/motd
ot checkout sample:v2 ./ocitree-demo-checkout
echo "\$ ostree fsck" >&2
ostree --repo="$REPO" fsck
echo "\$ ostree refs" >&2
ostree --repo="$REPO" refs

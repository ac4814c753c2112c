#!/bin/bash
# make-ostree-native.sh — (re)builds data/ostree-native/: OSTree commits made by the real
# `ostree commit`, encapsulated by the real ostree-ext (bench/ostree-ext-cli) as "ostree native
# containers", the way bootc and rpm-ostree images are written. See data/README.md.
#
#   sudo bash data/make-ostree-native.sh            # builds ostree-ext's CLI first if needed
#
# Needs root (owners and suid bits), ostree, jq, setfattr, and user xattrs on $TMPDIR.
# Everything is fixed (file times, commit timestamps, layer tar headers, gzip), so the same
# ostree and ostree-ext versions rewrite the same bytes.
set -euo pipefail
HERE=$(cd "$(dirname "$0")" && pwd)
OUT=${1:-$HERE/ostree-native}
OE=${OSTREE_EXT_CLI:-$(bash "$HERE/../bench/ostree-ext-cli/build.sh")}
WORK=$(mktemp -d "${TMPDIR:-/var/tmp}/ocitree-native.XXXXXX")
trap 'rm -rf "$WORK"' EXIT

# The OS tree, version $1: every kind of entry the format has to carry.
make_tree() {
  local t=$WORK/tree$1
  mkdir -p "$t"/usr/{bin,lib,share/empty,share/xdir,etc} "$t"/{boot,sysroot,var}
  printf '#!/bin/sh\necho tool %s\n' "$1" >"$t/usr/bin/tool"
  chmod 0755 "$t/usr/bin/tool"
  ln "$t/usr/bin/tool" "$t/usr/bin/tool-hardlink"
  printf 'su\n' >"$t/usr/bin/su"
  chmod 04755 "$t/usr/bin/su"
  printf 'lib\n' >"$t/usr/lib/libx.so.1"
  ln -s libx.so.1 "$t/usr/lib/libx.so"
  # A symlink with an xattr, as SELinux labels every symlink (user.* cannot be set on one).
  setfattr -h -n trusted.test -v link "$t/usr/lib/libx.so"
  ln -s ../..//usr/lib/libx.so.1 "$t/usr/lib/denormal-link"
  printf 'data\n' >"$t/usr/share/data"
  setfattr -n user.test -v value "$t/usr/share/data"
  setfattr -n user.dir -v 1 "$t/usr/share/xdir"
  printf 'owned\n' >"$t/usr/share/owned"
  chown 1000:1000 "$t/usr/share/owned"
  # Larger than ostree-ext's small-file limit (127 KiB).
  head -c 300000 <(yes 'a line of the big file') >"$t/usr/share/big"
  setfattr -n user.big -v 1 "$t/usr/share/big"
  printf 'ID=ocitree-test\n' >"$t/usr/etc/os-release"
  printf 'motd\n' >"$t/usr/etc/motd"
  setfattr -n user.etc -v motd "$t/usr/etc/motd"
  find "$t" -exec touch -h -d @0 {} +
}

commit() {
  ostree --repo="$WORK/repo" commit -b "os/$1" --tree=dir="$WORK/tree$1" \
    --timestamp="2024-01-0${1}T00:00:00Z" --subject="test os $1" \
    --add-metadata-string=version="$1.0" --add-metadata=ostree.bootable=true \
    --add-detached-metadata-string=test.signature="signature of $1" >/dev/null
}

# One component per group of paths: ostree-ext puts each in its own layer.
contentmeta() {
  local rev=$1
  ostree --repo="$WORK/repo" ls -R -C "$rev" | awk '$1 !~ /^d/ {print $5, $6}' |
    jq -R -s '
      [split("\n")[] | select(length > 0) | split(" ") | {csum: .[0], path: .[1]}]
      | map(.component = (if (.path | startswith("/usr/bin")) then "tools"
                          elif (.path | startswith("/usr/lib")) then "libs"
                          elif (.path | startswith("/usr/etc")) then "config"
                          else "unpackaged" end))
      | {version: 1,
         layers: {tools: "tools", libs: "libs", config: "config", unpackaged: "unpackaged"},
         mapping: (map({key: .csum, value: .component}) | from_entries)}'
}

rm -rf "$OUT"
ostree --repo="$WORK/repo" init --mode=archive
for v in 1 2; do
  make_tree "$v"
  commit "$v"
done
# v2 changes only the tools (usr/bin): every other component is the same.
cmp -s "$WORK/tree1/usr/share/big" "$WORK/tree2/usr/share/big"
for v in 1 2; do
  contentmeta "os/$v" >"$WORK/meta$v.json"
  "$OE" container encapsulate --repo="$WORK/repo" --contentmeta="$WORK/meta$v.json" \
    "os/$v" "oci:$OUT:chunked-v$v" >/dev/null
  # What the tests compare the imported commit with.
  ostree --repo="$WORK/repo" ls -R -X "os/$v" >"$OUT/ls-v$v.txt"
  ostree --repo="$WORK/repo" rev-parse "os/$v" >"$OUT/commit-v$v.txt"
done
"$OE" container encapsulate --repo="$WORK/repo" os/1 "oci:$OUT:single-v1" >/dev/null
{
  echo "ostree-ext $(grep -A1 '^name = "ostree-ext"$' "$HERE/../bench/ostree-ext-cli/Cargo.lock" | sed -n 's/^version = "\(.*\)"/\1/p')"
  echo "libostree $(ostree --version | sed -n "s/^ *Version: '\(.*\)'/\1/p")"
} >"$OUT/ostree-ext-version.txt"
du -sh "$OUT"

//! Derived images: layers made with the real `umoci` on top of an ostree native container
//! (the fixtures of `data/ostree-native/`), imported by ocitree and pulled by the real
//! ostree-ext (`container image pull`, built by `bench/ostree-ext-cli/build.sh`): the merged
//! trees must be identical (same root dirtree and dirmeta checksums, and the same
//! `ostree ls -R -X`), `ostree fsck` clean, and the base chunks reused.

use std::fs;
use std::os::unix::fs::{PermissionsExt, chown, symlink};
use std::path::{Path, PathBuf};
use std::process::Command;

use serde_json::Value;

use crate::ostree_native::ostree_ext_cli;
use crate::util::*;

/// The ostree native base: ostree-ext's chunked encapsulation of a small OS commit.
const BASE: &str = "chunked-v1";

fn umoci(args: &[&str]) {
    tools::run(Command::new("umoci").args(args));
}

fn image(layout: &Path, tag: &str) -> String {
    format!("{}:{tag}", layout.display())
}

/// `umoci unpack` of `from`, `edit(rootfs)`, `umoci repack` as tag `to`: one new layer
/// holding umoci's diff.
fn repack(layout: &Path, work: &Path, from: &str, to: &str, edit: fn(&Path)) {
    umoci(&["tag", "--image", &image(layout, from), to]);
    let bundle = work.join(to);
    let rootfs = tools::umoci_unpack(layout, to, &bundle);
    edit(&rootfs);
    let bundle = bundle.display().to_string();
    umoci(&["repack", "--image", &image(layout, to), &bundle]);
}

fn write(root: &Path, path: &str, data: &[u8], mode: u32) {
    let p = root.join(path);
    fs::create_dir_all(p.parent().unwrap()).unwrap();
    fs::write(&p, data).unwrap();
    fs::set_permissions(&p, fs::Permissions::from_mode(mode)).unwrap();
}

fn setfattr(path: &Path, name: &str, value: &str) {
    tools::run(
        Command::new("setfattr")
            .args(["-n", name, "-v", value])
            .arg(path),
    );
}

/// Layer of `derived-a`: adds (an executable, a file owned 1000:1000 with a `user.*` xattr,
/// a symlink), deletes (a symlink, a directory: umoci writes whiteouts), `/etc` edits (one
/// in place, which umoci writes with the base object's hardlink), `/var` content, and a
/// top-level directory ostree-ext drops.
fn edits_a(r: &Path) {
    write(r, "usr/bin/newtool", b"new tool\n", 0o755);
    write(r, "usr/share/owned-new", b"owned new\n", 0o644);
    chown(r.join("usr/share/owned-new"), Some(1000), Some(1000)).unwrap();
    setfattr(&r.join("usr/share/owned-new"), "user.new", "1");
    // In place: the base file is a hardlink of its object under sysroot/ostree/repo.
    fs::write(r.join("etc/motd"), b"edited motd\n").unwrap();
    write(r, "etc/new.conf", b"x=1\n", 0o644);
    write(r, "var/lib/app/state", b"state\n", 0o644);
    symlink("libx.so.1", r.join("usr/lib/newlink")).unwrap();
    fs::remove_file(r.join("usr/lib/libx.so")).unwrap();
    fs::remove_dir_all(r.join("usr/share/xdir")).unwrap();
    write(r, "opt/dropped", b"o\n", 0o644);
}

/// Layer of `derived-b` (a tar given to `umoci raw add-layer`): an opaque directory with a
/// new file; a changed mode of an existing directory (ostree-ext keeps the base's);
/// whiteouts of files of the same layer, one sorting before its whiteout (ostree-ext removes
/// it, the OCI spec would keep it) and one after; API filesystems with content; a dropped
/// top-level directory and a top-level whiteout (both dropped by ostree-ext).
fn layer_b(work: &Path) -> PathBuf {
    let t = work.join("b-tree");
    for d in ["usr/lib", "usr/share", "run", "opt", "tmp"] {
        fs::create_dir_all(t.join(d)).unwrap();
    }
    write(&t, "usr/lib/fresh", b"fresh\n", 0o644);
    write(&t, "usr/lib/.wh..wh..opq", b"", 0o644);
    fs::set_permissions(t.join("usr/share"), fs::Permissions::from_mode(0o700)).unwrap();
    write(&t, "usr/share/.early", b"early\n", 0o644);
    write(&t, "usr/share/.wh..early", b"", 0o644);
    write(&t, "usr/share/zlater", b"later\n", 0o644);
    write(&t, "usr/share/.wh.zlater", b"", 0o644);
    write(&t, ".wh.boot", b"", 0o644);
    write(&t, "run/x", b"r\n", 0o644);
    write(&t, "opt/y", b"o\n", 0o644);
    let tar = work.join("b.tar");
    tools::run(
        Command::new("tar")
            .args([
                "--numeric-owner",
                "--owner=0",
                "--group=0",
                "--xattrs",
                "-C",
            ])
            .arg(&t)
            .arg("-cf")
            .arg(&tar)
            .args(["usr", "run", "opt", "tmp", ".wh.boot"]),
    );
    tar
}

/// Layer of `derived-c`: a base file changed in place and given an xattr. umoci writes its
/// object under `sysroot/ostree/repo/objects` first and the tree path as a hardlink to it;
/// ostree-ext gives the path the new content without the xattr.
fn edits_c(r: &Path) {
    let p = r.join("usr/share/data");
    let mut data = fs::read(&p).unwrap();
    data.extend_from_slice(b"more\n");
    fs::write(&p, data).unwrap();
    setfattr(&p, "user.x", "1");
}

/// Builds `derived-a`, `-b` and `-c` (each on the previous) in a copy of the fixtures.
fn build(out: &Path) -> PathBuf {
    for t in ["umoci", "tar", "setfattr", "cp"] {
        tools::require(t);
    }
    let layout = out.join("layout");
    let fixtures = Path::new(env!("CARGO_MANIFEST_DIR")).join("data/ostree-native");
    tools::run(Command::new("cp").arg("-a").arg(&fixtures).arg(&layout));
    let work = out.join("work");
    fs::create_dir_all(&work).unwrap();
    repack(&layout, &work, BASE, "derived-a", edits_a);
    let tar = layer_b(&work).display().to_string();
    umoci(&[
        "raw",
        "add-layer",
        "--image",
        &image(&layout, "derived-a"),
        "--tag",
        "derived-b",
        &tar,
    ]);
    repack(&layout, &work, "derived-b", "derived-c", edits_c);
    layout
}

/// `ostree-ext-cli container image pull` of `layout:tag` into the bare repo `oracle`;
/// returns the merge commit it wrote.
fn ostree_ext_pull(cli: &Path, oracle: &Path, layout: &Path, tag: &str) -> String {
    let out = tools::run(
        Command::new(cli)
            .args(["container", "image", "pull", "--quiet"])
            .arg(oracle)
            .arg(format!(
                "ostree-unverified-image:oci:{}:{tag}",
                layout.display()
            )),
    );
    let said = String::from_utf8(out.stdout).unwrap();
    let commit = said
        .lines()
        .find_map(|l| l.strip_prefix("Wrote: ")?.rsplit_once(" => "))
        .map(|(_, c)| c.trim().to_string())
        .unwrap_or_else(|| panic!("no merge commit in ostree-ext's output: {said}"));
    assert_eq!(commit.len(), 64, "{said}");
    commit
}

/// The root dirtree and dirmeta checksums of `rev` (the whole tree, in two checksums).
fn root_checksums(repo: &Path, rev: &str) -> String {
    let ls = tools::ostree(repo, &["ls", "-C", "-d", rev, "/"]);
    let fields: Vec<&str> = ls.split_whitespace().collect();
    fields[4..6].join(" ")
}

#[test]
fn derived_images_give_the_tree_ostree_ext_pulls() {
    tools::require("ostree");
    tools::require("skopeo"); // ostree-ext reads images through skopeo's proxy
    let cli = ostree_ext_cli();
    let tmp = tempdir();
    let layout = build(tmp.path());
    let oracle = tmp.path().join("oracle");
    tools::ostree(&oracle, &["init", "--mode=bare"]);
    let repo = Repo::new();
    let base_layers = {
        let r = repo.import(&Repo::oci(&layout, BASE), "base");
        r.layers().0
    };
    for (i, tag) in ["derived-a", "derived-b", "derived-c"].iter().enumerate() {
        let theirs = ostree_ext_pull(&cli, &oracle, &layout, tag);
        let r = repo.import(&Repo::oci(&layout, tag), tag);
        let ours = r.commit();
        // Only the derived layer is new; the base chunks and earlier layers are reused.
        assert_eq!(r.layers(), (1, base_layers + i), "{tag}");
        let ls = |repo: &Path, rev: &str| tools::ostree(repo, &["ls", "-R", "-X", rev]);
        assert_eq!(
            ls(&repo.path, &ours),
            ls(&oracle, &theirs),
            "{tag}: ocitree (left) and ostree-ext (right)"
        );
        assert_eq!(
            root_checksums(&repo.path, &ours),
            root_checksums(&oracle, &theirs),
            "{tag}: the same tree, object for object"
        );
        let inspect: Value = serde_json::from_str(&repo.ok(&["inspect", tag]).stdout).unwrap();
        assert_eq!(inspect["format"], "ostree-native", "{tag}");
        let base = tools::ostree(
            &repo.path,
            &["show", "--print-metadata-key=ocitree.ostree-base", &ours],
        );
        let carried = tools::ostree(&repo.path, &["rev-parse", "ocitree/image/base"]);
        assert_eq!(base.trim(), format!("'{}'", carried.trim()), "{tag}");
    }
    tools::fsck(&repo.path);
    // The same image again: nothing to read.
    let again = repo.import(&Repo::oci(&layout, "derived-c"), "derived-c");
    assert_eq!(again.layers(), (0, base_layers + 3));
    // `images` says which format each image was read in.
    let images = repo.ok(&["images"]).stdout;
    let formats: Vec<(&str, &str)> = images
        .lines()
        .map(|l| l.split_whitespace().collect::<Vec<_>>())
        .map(|f| (f[0], f[4]))
        .collect();
    assert_eq!(
        formats,
        [
            ("NAME", "FORMAT"),
            ("base", "ostree-native"),
            ("derived-a", "ostree-native"),
            ("derived-b", "ostree-native"),
            ("derived-c", "ostree-native"),
        ]
    );
    // The cases the layers hold, seen in the tree (so that a change of the fixtures that
    // drops one cannot go unnoticed).
    let tree = tools::ostree(&repo.path, &["ls", "-R", "ocitree/image/derived-c"]);
    let paths: Vec<&str> = tree
        .lines()
        .filter_map(|l| l.split_whitespace().last())
        .collect();
    for present in [
        "/usr/etc/new.conf",
        "/usr/share/factory/var/lib/app/state",
        "/usr/lib/fresh",
        "/usr/share/zlater",
        "/run",
        "/tmp",
        "/boot",
    ] {
        assert!(paths.contains(&present), "{present} missing:\n{tree}");
    }
    for absent in [
        "/usr/share/xdir",
        "/usr/lib/libx.so.1",
        "/usr/share/.early",
        "/opt",
        "/run/x",
        "/etc",
        "/sysroot/ostree",
    ] {
        assert!(
            !paths.iter().any(|p| p.starts_with(absent)),
            "{absent}:\n{tree}"
        );
    }
    // Exported, it is the same derived image again: ocitree and ostree-ext give the same tree.
    let exported = tmp.path().join("exported");
    repo.ok(&["export", "derived-c", &Repo::oci(&exported, "d")]);
    let fresh = Repo::new();
    let again = fresh.import(&Repo::oci(&exported, "d"), "d").commit();
    let theirs = ostree_ext_pull(&cli, &oracle, &exported, "d");
    let ours = root_checksums(&repo.path, "ocitree/image/derived-c");
    assert_eq!(root_checksums(&fresh.path, &again), ours);
    assert_eq!(root_checksums(&oracle, &theirs), ours);
    let data = tools::ostree(
        &repo.path,
        &["cat", "ocitree/image/derived-c", "/usr/share/data"],
    );
    assert_eq!(data, "data\nmore\n");
    let etc = tools::ostree(
        &repo.path,
        &["cat", "ocitree/image/derived-c", "/usr/etc/motd"],
    );
    assert_eq!(etc, "edited motd\n");
}

/// A hardlink to a file of the image below: ostree-ext's `ostree commit` of the layer finds
/// no target and fails; ocitree refuses it too, naming the layer and the path.
#[test]
fn a_hardlink_into_the_image_below_is_refused_as_ostree_ext_does() {
    tools::require("ostree");
    tools::require("skopeo");
    let cli = ostree_ext_cli();
    let tmp = tempdir();
    let layout = tmp.path().join("layout");
    let fixtures = Path::new(env!("CARGO_MANIFEST_DIR")).join("data/ostree-native");
    tools::run(Command::new("cp").arg("-a").arg(&fixtures).arg(&layout));
    let layer = Layer::new(&[hardlink("usr/bin/tool2", "usr/bin/tool")]);
    let tar = tmp.path().join("link.tar");
    fs::write(&tar, &layer.tar).unwrap();
    umoci(&[
        "raw",
        "add-layer",
        "--image",
        &image(&layout, BASE),
        "--tag",
        "link",
        &tar.display().to_string(),
    ]);
    let oracle = tmp.path().join("oracle");
    tools::ostree(&oracle, &["init", "--mode=bare"]);
    let out = Command::new(&cli)
        .args(["container", "image", "pull", "--quiet"])
        .arg(&oracle)
        .arg(format!(
            "ostree-unverified-image:oci:{}:link",
            layout.display()
        ))
        .output()
        .unwrap();
    assert!(!out.status.success(), "ostree-ext accepted it");
    let repo = Repo::new();
    let snap = repo.snapshot();
    let err = repo.fails(&["import", &Repo::oci(&layout, "link"), "os"]);
    assert!(err.contains("usr/bin/tool2"), "{err}");
    assert!(err.contains("derived layer"), "{err}");
    snap.assert_unchanged(&repo.path);
}

/// `--derived-layers oci` departs from ostree-ext exactly where ostree-ext departs from the
/// OCI layer rules: the mode of a directory the layer names, a file of the same layer whose
/// name sorts before its whiteout, and the xattr of a base file changed in place.
#[test]
fn oci_rules_differ_from_ostree_ext_only_where_it_departs_from_the_spec() {
    let tmp = tempdir();
    let layout = build(tmp.path());
    let src = Repo::oci(&layout, "derived-c");
    let listing = |rules: &str| {
        let repo = Repo::new();
        repo.ok(&["import", "--derived-layers", rules, &src, "os"]);
        tools::fsck(&repo.path);
        tools::ostree(&repo.path, &["ls", "-R", "-X", "ocitree/image/os"])
    };
    let (ext, oci) = (listing("ostree-ext"), listing("oci"));
    let only = |a: &str, b: &str| -> Vec<String> {
        let b: Vec<&str> = b.lines().collect();
        a.lines()
            .filter(|l| !b.contains(l))
            .map(String::from)
            .collect()
    };
    assert_eq!(
        only(&oci, &ext),
        [
            "d00700 0 0      0 { @a(ayay) [] } /usr/share",
            "-00644 0 0      6 { @a(ayay) [] } /usr/share/.early",
            "-00644 0 0     10 { [(b'user.x', [byte 0x31])] } /usr/share/data",
        ]
    );
    assert_eq!(
        only(&ext, &oci),
        [
            "d00755 0 0      0 { @a(ayay) [] } /usr/share",
            "-00644 0 0     10 { @a(ayay) [] } /usr/share/data",
        ]
    );
}

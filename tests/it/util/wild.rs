//! The "wild" images: OCI layouts whose layers the real `umoci` writes (unpack / change the
//! rootfs / repack, `raw add-layer`, `insert`), so the importer meets a real tool's tars rather
//! than our own. `assert_matches_umoci` then uses `umoci unpack` of the same layout as oracle.
//!
//! - `small` (tag `latest`), 3 gzip layers:
//!   1. base: directories, files, an exec and a setuid file, symlinks (relative, absolute,
//!      dangling), a hardlink, an empty directory, a 2 MiB incompressible file, files owned
//!      1000:1000, `user.*` xattrs on a file and a directory;
//!   2. umoci's diff of a changed rootfs: a deleted file and directory, file→dir, dir→file,
//!      changed content, a chmod (umoci writes `opt/dir-to-file/.wh.inner` after the new file);
//!   3. a tar we give `umoci raw add-layer`: an opaque directory with a new file, a whiteout
//!      of the empty directory, a new file. The config gets an entrypoint and a label.
//! - `quirks`: layers 1–2 of `small`, then three `umoci insert` layers (`--opaque`,
//!   `--whiteout`, a file). umoci 0.4.7 writes those tars truncated: the last member's padding
//!   and the end-of-archive blocks are missing.

use std::fs;
use std::os::unix::fs::{PermissionsExt, chown, symlink};
use std::path::Path;
use std::process::Command;

use super::tools::{require, run};

/// Builds `small` and `quirks` under `out` (run as root: owners survive unpack/repack).
pub fn build(out: &Path) {
    for t in ["umoci", "tar", "setfattr", "cp"] {
        require(t);
    }
    let work = out.join("work");
    fs::create_dir_all(&work).unwrap();
    let small = out.join("small");
    umoci(&["init", "--layout"], &small, &[]);
    umoci(&["new", "--image"], &image(&small), &[]);
    change_rootfs(&small, &work.join("b1"), base);
    change_rootfs(&small, &work.join("b2"), second);
    let quirks = out.join("quirks");
    run(Command::new("cp").arg("-a").arg(&small).arg(&quirks));
    third(&small, &work);
    quirk_layers(&quirks, &work);
    fs::remove_dir_all(&work).unwrap();
}

fn image(layout: &Path) -> std::path::PathBuf {
    let mut s = layout.as_os_str().to_owned();
    s.push(":latest");
    s.into()
}

/// `umoci ARGS... PATH EXTRA...`.
fn umoci(args: &[&str], path: &Path, extra: &[&Path]) {
    run(Command::new("umoci").args(args).arg(path).args(extra));
}

/// unpack → `edit(rootfs)` → repack: one new layer holding umoci's diff.
fn change_rootfs(layout: &Path, bundle: &Path, edit: fn(&Path)) {
    let img = image(layout);
    run(Command::new("umoci")
        .args(["unpack", "--image"])
        .arg(&img)
        .arg(bundle));
    edit(&bundle.join("rootfs"));
    run(Command::new("umoci")
        .args(["repack", "--image"])
        .arg(&img)
        .arg(bundle));
}

fn write(root: &Path, path: &str, data: &[u8], mode: u32) {
    let p = root.join(path);
    fs::write(&p, data).unwrap();
    fs::set_permissions(&p, fs::Permissions::from_mode(mode)).unwrap();
}

fn setfattr(path: &Path, name: &str, value: &str) {
    run(Command::new("setfattr")
        .args(["-n", name, "-v", value])
        .arg(path));
}

/// `n` bytes from a fixed xorshift sequence: deterministic and incompressible.
fn noise(n: usize) -> Vec<u8> {
    let mut x: u64 = 0x9E37_79B9_7F4A_7C15;
    let mut v = Vec::with_capacity(n + 8);
    while v.len() < n {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        v.extend_from_slice(&x.to_le_bytes());
    }
    v.truncate(n);
    v
}

fn base(r: &Path) {
    for d in [
        "etc/config",
        "usr/bin",
        "usr/lib",
        "var/empty",
        "opt/app/data/sub",
        "opt/dir-to-file",
        "home/user",
    ] {
        fs::create_dir_all(r.join(d)).unwrap();
    }
    write(r, "etc/hostname", b"base-host\n", 0o644);
    write(r, "etc/config/a.conf", b"a=1\n", 0o644);
    write(r, "etc/config/b.conf", b"b=2\n", 0o644);
    write(r, "usr/bin/tool", b"#!/bin/sh\necho tool\n", 0o755);
    write(r, "usr/bin/suid", b"#!/bin/sh\necho suid\n", 0o4755);
    fs::hard_link(r.join("usr/bin/tool"), r.join("usr/bin/tool-hardlink")).unwrap();
    write(r, "usr/lib/libx.so.1", b"libx\n", 0o644);
    symlink("libx.so.1", r.join("usr/lib/libx.so")).unwrap();
    symlink("/etc/hostname", r.join("etc/abs-link")).unwrap();
    symlink("../../nonexistent", r.join("usr/lib/dangling")).unwrap();
    for i in 1..=3 {
        write(
            r,
            &format!("opt/app/data/{i}"),
            format!("data {i}\n").as_bytes(),
            0o644,
        );
    }
    write(r, "opt/app/data/sub/deep", b"deep\n", 0o644);
    write(r, "opt/replace-me", b"to become a dir\n", 0o644);
    write(r, "opt/dir-to-file/inner", b"inside dir\n", 0o644);
    write(r, "home/user/f", b"user file\n", 0o644);
    for p in ["home/user", "home/user/f"] {
        chown(r.join(p), Some(1000), Some(1000)).unwrap();
    }
    write(r, "opt/app/big.bin", &noise(2 << 20), 0o644);
    setfattr(&r.join("etc/config/a.conf"), "user.comment", "has-xattr");
    setfattr(&r.join("opt/app"), "user.dirattr", "d");
}

fn second(r: &Path) {
    fs::remove_file(r.join("etc/config/b.conf")).unwrap();
    fs::remove_dir_all(r.join("opt/app/data")).unwrap();
    fs::remove_file(r.join("opt/replace-me")).unwrap();
    fs::create_dir(r.join("opt/replace-me")).unwrap();
    write(r, "opt/replace-me/inner", b"now inside\n", 0o644);
    fs::remove_dir_all(r.join("opt/dir-to-file")).unwrap();
    write(r, "opt/dir-to-file", b"now a file\n", 0o644);
    write(r, "etc/hostname", b"layer2-host\n", 0o644);
    fs::set_permissions(r.join("usr/bin/tool"), fs::Permissions::from_mode(0o700)).unwrap();
    write(r, "etc/new-in-l2", b"new\n", 0o644);
}

/// `small`'s layer 3: a PAX tar by GNU tar, members in the order given (the opaque marker
/// before its directory), added with `umoci raw add-layer`; then the config changes.
fn third(small: &Path, work: &Path) {
    let l3 = work.join("l3");
    fs::create_dir_all(l3.join("etc/config")).unwrap();
    fs::create_dir_all(l3.join("var")).unwrap();
    fs::create_dir_all(l3.join("opt")).unwrap();
    fs::set_permissions(l3.join("etc/config"), fs::Permissions::from_mode(0o755)).unwrap();
    write(&l3, "etc/config/.wh..wh..opq", b"", 0o644);
    write(&l3, "etc/config/c.conf", b"c=3\n", 0o644);
    write(&l3, "var/.wh.empty", b"", 0o644);
    write(&l3, "opt/inserted.txt", b"inserted\n", 0o644);
    let tar = work.join("l3.tar");
    run(Command::new("tar")
        .args([
            "--format=posix",
            "--no-recursion",
            "--numeric-owner",
            "--owner=0",
            "--group=0",
            "-cf",
        ])
        .arg(&tar)
        .arg("-C")
        .arg(&l3)
        .args([
            "etc/config/.wh..wh..opq",
            "etc/config",
            "etc/config/c.conf",
            "var/.wh.empty",
            "opt/inserted.txt",
        ]));
    let img = image(small);
    umoci(&["raw", "add-layer", "--image"], &img, &[&tar]);
    run(Command::new("umoci")
        .args(["config", "--image"])
        .arg(&img)
        .args(["--config.entrypoint", "/usr/bin/tool"])
        .args(["--config.label", "test.label=small"]));
}

/// `quirks`' layers 3–5: `umoci insert --opaque` of a directory, `--whiteout`, a file.
fn quirk_layers(quirks: &Path, work: &Path) {
    let conf = work.join("newconf");
    fs::create_dir_all(&conf).unwrap();
    write(&conf, "c.conf", b"c=3\n", 0o644);
    write(work, "ins.txt", b"inserted\n", 0o644);
    let insert = |args: &[&std::ffi::OsStr]| {
        run(Command::new("umoci")
            .args(["insert", "--image"])
            .arg(image(quirks))
            .args(args));
    };
    insert(&["--opaque".as_ref(), conf.as_ref(), "/etc/config".as_ref()]);
    insert(&["--whiteout".as_ref(), "/var/empty".as_ref()]);
    insert(&[work.join("ins.txt").as_ref(), "/opt/inserted.txt".as_ref()]);
}

//! Layer edges where a wrong tree would be silent (issue 9): truncated tars, invalid
//! whiteouts, whiteouts that must not create directories, skipped entries that still own
//! their path, sparse files and AUFS metadata. Trees are compared with `umoci unpack` where
//! umoci follows the spec, with the spec's words where it does not; every rejection exits 2,
//! names image, layer and path, and leaves the repository as it was.

use std::process::Command;

use serde_json::Value;

use crate::util::*;

/// Builds one image of `tars` (each a layer, compressed as `comp`) under `tmp`.
fn layout(tmp: &std::path::Path, name: &str, tars: &[Vec<u8>], comp: Comp) -> String {
    let dir = tmp.join(name);
    let layers: Vec<Layer> = tars
        .iter()
        .map(|t| Layer::with(t.clone(), comp, false))
        .collect();
    Layout::single(&dir, &layers);
    Repo::oci(&dir, "latest")
}

/// Imports `src` into a fresh repo expecting a rejection; checks exit 2, the image, layer and
/// every `needles` in the message, and that the repo did not change. Returns the message.
fn rejected(src: &str, needles: &[&str]) -> String {
    let repo = Repo::new();
    let snap = repo.snapshot();
    let err = repo.fails(&["import", src, "img"]);
    assert!(
        err.contains("image ") && err.contains("layer sha256:"),
        "{err}"
    );
    for n in needles {
        assert!(err.contains(n), "{n:?} not in {err}");
    }
    snap.assert_unchanged(&repo.path);
    err
}

/// (header, data start, data size) of every member of `tar` as the tar crate reads it.
fn members(tar: &[u8]) -> Vec<(String, u64, u64, u64)> {
    let mut a = tar::Archive::new(tar);
    a.entries()
        .unwrap()
        .map(|e| {
            let e = e.unwrap();
            (
                String::from_utf8_lossy(&e.path_bytes()).into_owned(),
                e.raw_header_position(),
                e.raw_file_position(),
                e.size(),
            )
        })
        .collect()
}

/// Exports image `img` of `repo` and checks every layer tar is `tars`' byte for byte.
fn assert_export_exact(repo: &Repo, tars: &[Vec<u8>]) {
    let tmp = tempdir();
    let out = tmp.path().join("out");
    repo.ok(&["export", "img", &format!("oci:{}:x", out.display())]);
    let json = |p: std::path::PathBuf| -> Value {
        serde_json::from_slice(&std::fs::read(p).unwrap()).unwrap()
    };
    let blob = |d: &Value| out.join("blobs/sha256").join(&d.as_str().unwrap()[7..]);
    let index = json(out.join("index.json"));
    let manifest = json(blob(&index["manifests"][0]["digest"]));
    let layers = manifest["layers"].as_array().unwrap();
    assert_eq!(layers.len(), tars.len());
    for (l, t) in layers.iter().zip(tars) {
        let data = std::fs::read(blob(&l["digest"])).unwrap();
        let mut tar = Vec::new();
        std::io::Read::read_to_end(
            &mut ocitree::decompress::decompress(&data[..]).unwrap(),
            &mut tar,
        )
        .unwrap();
        assert!(tar == *t, "exported layer tar differs from the original");
    }
}

// ---- 1. truncated tars ----

/// A tar with a PAX record (xattr), a GNU long-name member and a 1500-byte file.
fn truncation_tar() -> Vec<u8> {
    let mut b = tar::Builder::new(Vec::new());
    let long = format!("d/{}", "l".repeat(120));
    let mut h = tar::Header::new_gnu();
    h.set_mode(0o644);
    h.set_uid(0);
    h.set_gid(0);
    h.set_mtime(1_700_000_000);
    h.set_size(3);
    b.append_data(&mut h, &long, &b"gnu"[..]).unwrap();
    let mut t = b.into_inner().unwrap();
    t.truncate(t.len() - 1024); // its end-of-archive blocks
    t.extend(tar_of(&[
        file_xattrs("x", b"xattr", &[("user.a", b"1")]),
        file("big", &[7u8; 1500]),
        file("last", b"end"),
    ]));
    t.truncate(t.len() - 1024); // the end-of-archive blocks; re-added where wanted
    t
}

/// Every cut position is an error naming the entry, for every compression; the repository
/// is unchanged.
#[test]
fn truncated_member_is_an_error_at_every_cut() {
    let tar = truncation_tar();
    let m = members(&tar);
    let find = |name: &str| m.iter().find(|e| e.0.ends_with(name)).unwrap().clone();
    let (_, gnu_h, _, _) = find(&"l".repeat(120));
    assert_eq!(gnu_h, 1024);
    let (_, x_h, _, _) = find("x");
    let (_, _, big_d, _) = find("big");
    let (_, last_h, last_d, _) = find("last");
    // the PAX `x` header of entry "x" is the block before its data's header; its records
    // follow it: the PAX member starts 1024 bytes before the header of "x"
    let pax_h = x_h - 1024;
    let cuts: Vec<(u64, &str, &str)> = vec![
        (big_d + 100, "\"big\"", "inside this entry's data"),
        (big_d + 1400, "\"big\"", "inside this entry's data"),
        (big_d + 1024, "\"big\"", "inside this entry's data"),
        (last_d + 2, "\"last\"", "inside this entry's data"),
        (last_h + 300, "\"big\"", "inside the header"),
        (
            pax_h + 512 + 10,
            "l",
            "inside the header or extension record",
        ),
        (pax_h + 1024, "l", "after this entry"),
        // the GNU long-name member (header, then the name) comes before the header of its entry
        (
            gnu_h - 512 + 20,
            "inside the first header or extension record",
            "",
        ),
        (gnu_h - 1024 + 300, "inside the first header", ""),
    ];
    let tmp = tempdir();
    for (i, (cut, who, place)) in cuts.iter().enumerate() {
        for comp in [Comp::None, Comp::Gzip, Comp::ZstdMulti] {
            let src = layout(
                tmp.path(),
                &format!("c{i}-{comp:?}"),
                &[tar[..*cut as usize].to_vec()],
                comp,
            );
            rejected(&src, &["truncated layer tar", who, place]);
        }
    }
}

/// Accepted ends: after a member's data and padding (no end-of-archive blocks), inside the
/// padding after complete data (umoci 0.4.7 `insert`), and inside an end-of-archive block;
/// the files are whole, and export gives the same bytes back.
#[test]
fn clean_ends_and_missing_padding_import() {
    let tar = truncation_tar();
    let (_, _, last_d, _) = members(&tar).into_iter().last().unwrap();
    let tmp = tempdir();
    let mut cut_end_block = tar.clone();
    cut_end_block.extend([0u8; 100]); // a cut end-of-archive block
    let ends = [
        tar.clone(),
        tar[..last_d as usize + 3].to_vec(),
        tar[..last_d as usize + 100].to_vec(),
        cut_end_block,
    ];
    for (i, cut) in ends.into_iter().enumerate() {
        for comp in [Comp::None, Comp::Gzip] {
            let src = layout(
                tmp.path(),
                &format!("e{i}-{comp:?}"),
                std::slice::from_ref(&cut),
                comp,
            );
            let repo = Repo::new();
            repo.import(&src, "img");
            assert_eq!(repo.ok(&["cat", "img", "/last"]).stdout, "end");
            let big = repo.ok(&["cat", "img", "/big"]).stdout;
            assert_eq!(big.as_bytes(), &[7u8; 1500][..]);
            if comp == Comp::None {
                assert_export_exact(&repo, std::slice::from_ref(&cut));
            }
        }
    }
}

// ---- 2. invalid whiteout names ----

#[test]
fn invalid_whiteout_names_are_errors() {
    let tmp = tempdir();
    let lower = tar_of(&[dir("a"), file("a/f", b"f")]);
    for (i, bad) in [
        "a/.wh.",
        "a/.wh..",
        "a/.wh...",
        ".wh..wh.",
        "a/.wh..wh.foo",
        "a/.wh..wh.plnk",
        "a/.wh.x/y",
        ".wh..wh.aufs/y",
    ]
    .into_iter()
    .enumerate()
    {
        let src = layout(
            tmp.path(),
            &format!("w{i}"),
            &[lower.clone(), tar_of(&[file(bad, b"")])],
            Comp::Gzip,
        );
        rejected(&src, &["invalid whiteout", &format!("{bad:?}")]);
    }
}

// ---- 3. whiteouts never create anything ----

/// Markers whose parent is missing, a file, a dangling symlink or a symlink that climbs
/// out: no-ops, no directory appears (umoci agrees); markers through a symlink to a real
/// directory act there.
#[test]
fn whiteouts_create_nothing() {
    let (repo, _) = crate::whiteouts::check(&[
        vec![
            dir("a"),
            file("a/f", b"f"),
            file("a/g", b"g"),
            file("plain", b"p"),
            symlink("dangling", "missing/dir"),
            symlink("out", "../../../nowhere"),
            symlink("toa", "a"),
        ],
        vec![
            whiteout("nodir/x"),
            whiteout("deep/er/x"),
            opaque("nodir2"),
            opaque("nodir3/sub"),
            whiteout("plain/x"),
            whiteout("dangling/x"),
            opaque("dangling"),
            whiteout("out/x"),
            opaque("out/sub"),
            whiteout("toa/f"),
        ],
    ]);
    for gone in [
        "/nodir", "/deep", "/nodir2", "/nodir3", "/missing", "/nowhere", "/a/f",
    ] {
        assert_ne!(repo.run(&["ls", "img", gone]).code, 0, "{gone} exists");
    }
    assert_eq!(repo.ok(&["cat", "img", "/a/g"]).stdout, "g");
}

/// The layer commit still holds the markers, so export rebuilds the tar byte for byte.
#[test]
fn whiteout_only_layer_exports_exactly() {
    let tmp = tempdir();
    let tars = vec![
        tar_of(&[dir("a"), file("a/f", b"f")]),
        tar_of(&[whiteout("nodir/x"), opaque("nodir2/sub"), whiteout("a/f")]),
    ];
    let src = layout(tmp.path(), "img", &tars, Comp::None);
    let repo = Repo::new();
    repo.import(&src, "img");
    assert_eq!(repo.run(&["ls", "img", "/nodir"]).code, 2);
    assert_export_exact(&repo, &tars);
}

// ---- 4. skipped entries own their path ----

/// A device or FIFO over a lower file, directory or symlink removes it (umoci, as root,
/// creates the node there: the tree is umoci's without its special files); export restores
/// the nodes from the tar-split.
#[test]
fn skipped_entry_removes_the_lower_path() {
    let tmp = tempdir();
    let dev = |p: &str| E::Char {
        path: p.into(),
        major: 0,
        minor: 0,
    };
    let fifo = |p: &str| E::Fifo { path: p.into() };
    let tars = vec![
        tar_of(&[
            dir("dev"),
            file("dev/keep", b"k"),
            file("dev/null", b"lower"),
            dir("run"),
            dir("run/d"),
            file("run/d/x", b"x"),
            symlink("run/l", "d"),
            file("same", b"s"),
        ]),
        tar_of(&[
            dev("dev/null"),
            fifo("run/d"),
            fifo("run/l"),
            fifo("new/fifo"),
            file("same2", b"2"),
            dev("same2"),
        ]),
    ];
    let src = layout(tmp.path(), "img", &tars, Comp::None);
    let repo = Repo::new();
    let r = repo.import(&src, "img");
    assert!(r.stderr.contains("skipped FIFO /run/d"), "{}", r.stderr);
    let commit = r.commit();
    let work = tempdir();
    let ours = work.path().join("ours");
    tools::ostree_checkout(&repo.path, &commit, &ours);
    let rootfs = tools::umoci_unpack(
        &tmp.path().join("img"),
        "latest",
        &work.path().join("bundle"),
    );
    for special in ["dev/null", "run/d", "run/l", "new/fifo", "same2"] {
        let p = rootfs.join(special);
        let ft = std::fs::symlink_metadata(&p).unwrap().file_type();
        assert!(
            !ft.is_file() && !ft.is_dir() && !ft.is_symlink(),
            "{special}"
        );
        std::fs::remove_file(p).unwrap();
    }
    tree::assert_same(&ours, &rootfs);
    assert_eq!(repo.ok(&["cat", "img", "/dev/keep"]).stdout, "k");
    assert_export_exact(&repo, &tars);
}

// ---- 5. sparse files ----

/// Files with holes, written by GNU tar `--sparse` in each of its formats (old GNU type `S`,
/// with extension blocks past four segments; PAX 0.0, 0.1, 1.0) import as the real files —
/// the same tree as the directory tar read (and as umoci's unpack of the PAX ones) — and
/// export gives the tar back byte for byte.
#[test]
fn gnu_sparse_files_import_expanded() {
    use std::os::unix::fs::FileExt;
    tools::require("tar");
    let tmp = tempdir();
    let src_dir = tmp.path().join("src");
    std::fs::create_dir_all(src_dir.join("d")).unwrap();
    // 1 MiB with data at 0, 300 KiB and at the end: holes between
    let f = std::fs::File::create(src_dir.join("d/sparse")).unwrap();
    f.write_all_at(b"head", 0).unwrap();
    f.write_all_at(&[9u8; 5000], 300 * 1024).unwrap();
    f.write_all_at(b"tail", (1 << 20) - 4).unwrap();
    // 30 segments: more than a type S header holds
    let f = std::fs::File::create(src_dir.join("many")).unwrap();
    for i in 0..30u64 {
        f.write_all_at(&[i as u8 + 1; 100], i * 65536).unwrap();
    }
    f.set_len(31 * 65536 + 7).unwrap();
    // holes only
    std::fs::File::create(src_dir.join("empty"))
        .unwrap()
        .set_len(1 << 20)
        .unwrap();
    std::fs::write(src_dir.join("plain"), b"plain").unwrap();
    for (i, opts) in [
        &["--format=gnu"][..],
        &["--format=pax", "--sparse-version=0.0"],
        &["--format=pax", "--sparse-version=0.1"],
        &["--format=pax", "--sparse-version=1.0"],
    ]
    .into_iter()
    .enumerate()
    {
        let tar_path = tmp.path().join(format!("s{i}.tar"));
        tools::run(
            Command::new("tar")
                .arg("--sparse")
                .args(opts)
                .arg("--numeric-owner")
                .arg("-cf")
                .arg(&tar_path)
                .arg("-C")
                .arg(&src_dir)
                .args(["d", "many", "empty", "plain"]),
        );
        let tar = std::fs::read(&tar_path).unwrap();
        let name = format!("img{i}");
        let src = layout(tmp.path(), &name, std::slice::from_ref(&tar), Comp::Gzip);
        let repo = Repo::new();
        let commit = repo.import(&src, "img").commit();
        let work = tempdir();
        let ours = work.path().join("ours");
        tools::ostree_checkout(&repo.path, &commit, &ours);
        tree::assert_same(&ours, &src_dir);
        // umoci 0.4.7 reads the PAX formats (Go's archive/tar expands them), not type S
        if i > 0 {
            let rootfs = tools::umoci_unpack(
                &tmp.path().join(&name),
                "latest",
                &work.path().join("bundle"),
            );
            tree::assert_same(&ours, &rootfs);
        }
        assert_export_exact(&repo, std::slice::from_ref(&tar));
        // cut inside the stored segments of "many": truncated, not zero-filled
        let (_, _, data, _) = members(&tar)
            .into_iter()
            .find(|m| m.0.ends_with("many"))
            .unwrap();
        let cut = tar[..data as usize + 3000].to_vec();
        let src = layout(tmp.path(), &format!("cut{i}"), &[cut], Comp::Gzip);
        rejected(&src, &["truncated layer tar", "many"]);
    }
}

/// A sparse map that does not fit the member is refused, naming the entry.
#[test]
fn bad_sparse_maps_are_refused() {
    let tmp = tempdir();
    let pax = |recs: &[(&str, &str)], name: &str, data: &[u8]| {
        let mut b = tar::Builder::new(Vec::new());
        b.append_pax_extensions(recs.iter().map(|(k, v)| (*k, v.as_bytes())))
            .unwrap();
        let mut h = tar::Header::new_ustar();
        h.set_mode(0o644);
        h.set_uid(0);
        h.set_gid(0);
        h.set_mtime(0);
        h.set_size(data.len() as u64);
        b.append_data(&mut h, name, data).unwrap();
        b.into_inner().unwrap()
    };
    let cases = [
        // the map lists more data than the member stores
        pax(
            &[
                ("GNU.sparse.size", "100"),
                ("GNU.sparse.numblocks", "1"),
                ("GNU.sparse.map", "0,50"),
            ],
            "s1",
            &[1; 10],
        ),
        // a segment past the real size
        pax(
            &[
                ("GNU.sparse.size", "10"),
                ("GNU.sparse.numblocks", "1"),
                ("GNU.sparse.map", "5,10"),
            ],
            "s2",
            &[1; 10],
        ),
        // numblocks does not match the map
        pax(
            &[
                ("GNU.sparse.size", "10"),
                ("GNU.sparse.numblocks", "2"),
                ("GNU.sparse.map", "0,10"),
            ],
            "s3",
            &[1; 10],
        ),
        // a 1.0 map that is not numbers
        pax(
            &[
                ("GNU.sparse.major", "1"),
                ("GNU.sparse.minor", "0"),
                ("GNU.sparse.name", "s4"),
                ("GNU.sparse.realsize", "10"),
            ],
            "GNUSparseFile.1/s4",
            &[b'x'; 512],
        ),
    ];
    for (i, tar) in cases.into_iter().enumerate() {
        let src = layout(tmp.path(), &format!("b{i}"), &[tar], Comp::None);
        rejected(&src, &["sparse", &format!("s{}", i + 1)]);
    }
}

// ---- 6. AUFS metadata ----

/// `.wh..wh.plnk/`, `.wh..wh.aufs` and `.wh..wh.orph/` at the root are hidden; a hardlink
/// into `.wh..wh.plnk` is a regular file with the target's content (as Docker applies it).
#[test]
fn aufs_metadata_is_hidden() {
    let tmp = tempdir();
    let tars = vec![
        tar_of(&[dir("etc"), file("etc/a", b"a")]),
        tar_of(&[
            // a link before its target: resolved when the layer ends
            hardlink("etc/early", ".wh..wh.plnk/1234.5678"),
            file(".wh..wh.aufs", b""),
            dir(".wh..wh.orph"),
            dir(".wh..wh.plnk"),
            file(".wh..wh.plnk/1234.5678", b"linked content"),
            hardlink("etc/hl", ".wh..wh.plnk/1234.5678"),
            hardlink("etc/hl2", ".wh..wh.plnk/1234.5678"),
        ]),
    ];
    let src = layout(tmp.path(), "img", &tars, Comp::None);
    let repo = Repo::new();
    repo.import(&src, "img");
    let root = repo.ok(&["ls", "img", "/"]).stdout;
    assert!(!root.contains(".wh."), "{root}");
    assert_eq!(repo.ok(&["cat", "img", "/etc/hl"]).stdout, "linked content");
    assert_eq!(
        repo.ok(&["cat", "img", "/etc/hl2"]).stdout,
        "linked content"
    );
    assert_eq!(repo.ok(&["cat", "img", "/etc/a"]).stdout, "a");
    assert_eq!(
        repo.ok(&["cat", "img", "/etc/early"]).stdout,
        "linked content"
    );
    // the whole tree: etc, etc/a, etc/hl, etc/hl2, etc/early and nothing else
    let all = repo.ok(&["ls", "-R", "img", "/"]).stdout;
    assert_eq!(all.lines().filter(|l| l.contains(" /")).count(), 6, "{all}");
    assert_export_exact(&repo, &tars);
}

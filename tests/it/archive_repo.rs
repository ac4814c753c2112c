//! Archive repositories (what remotes serve): objects compressed by ocitree on every core at
//! the repository's `core.zlib-level` (small files whole, large ones in blocks as they
//! stream) give the same commits as bare-user imports, pass `ostree fsck`, and a failed
//! import leaves none of them behind.

use std::path::Path;

use crate::serve::small_image;
use crate::util::*;

/// `len` bytes that compress, but not to nothing: text with a pseudo-random word per line.
fn large_file(len: usize) -> Vec<u8> {
    let mut x = 0x9E37_79B9_7F4A_7C15u64;
    (0..)
        .flat_map(|i| {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            format!("record {i}: {x:016x}\n").into_bytes()
        })
        .take(len)
        .collect()
}

/// Total bytes of the `.filez` objects of an archive repository.
fn filez_bytes(repo: &Path) -> u64 {
    let mut total = 0;
    for d in std::fs::read_dir(repo.join("objects")).unwrap() {
        for f in std::fs::read_dir(d.unwrap().path()).unwrap() {
            let f = f.unwrap();
            if f.file_name().to_string_lossy().ends_with(".filez") {
                total += f.metadata().unwrap().len();
            }
        }
    }
    total
}

#[test]
fn archive_objects_compressed_on_all_cores_give_the_same_commit_at_the_configured_level() {
    let tmp = tempdir();
    let text: Vec<u8> = (0..40_000)
        .flat_map(|i| format!("line {i} of a compressible file\n").into_bytes())
        .collect();
    let mut entries = vec![dir("usr"), file("usr/empty", b"")];
    let names: Vec<String> = (0..64).map(|i| format!("usr/f{i}")).collect();
    for (i, n) in names.iter().enumerate() {
        entries.push(file(n, &text[i * 1000..i * 1000 + 20_000]));
    }
    entries.push(file("usr/big", &text));
    entries.push(file_xattrs("usr/x", b"x", &[("user.k", b"v")]));
    // Past the size up to which files are buffered whole: compressed in blocks on every core.
    let large = large_file((9 << 20) + 12_345);
    entries.push(file_xattrs("usr/large", &large, &[("user.k", b"w")]));
    let src_dir = tmp.path().join("img");
    Layout::single(&src_dir, &[Layer::new(&entries)]);
    let src = Repo::oci(&src_dir, "latest");

    let bare = Repo::new();
    let commit = bare.import(&src, "img").commit();
    let mut sizes = Vec::new();
    for level in ["1", "9"] {
        let archive = Repo::with_mode("archive");
        tools::ostree(&archive.path, &["config", "set", "core.zlib-level", level]);
        assert_eq!(
            archive.import(&src, "img").commit(),
            commit,
            "level {level}"
        );
        tools::fsck(&archive.path);
        let out = tmp.path().join(format!("co{level}"));
        tools::ostree_checkout(&archive.path, &commit, &out);
        assert_eq!(std::fs::read(out.join("usr/big")).unwrap(), text);
        assert!(std::fs::read(out.join("usr/large")).unwrap() == large);
        sizes.push(filez_bytes(&archive.path));
    }
    // The level the repository is configured with is the one used.
    assert!(
        sizes[1] < sizes[0],
        "level 9 {} vs level 1 {}",
        sizes[1],
        sizes[0]
    );
}

#[test]
fn a_failed_import_into_an_archive_repository_leaves_none_of_its_objects() {
    let tmp = tempdir();
    let repo = Repo::with_mode("archive");
    repo.import(&small_image(&tmp.path().join("good"), b"good\n"), "good");
    let snap = repo.snapshot();
    // Every file is compressed and stored before the diff_id is found wrong at the end.
    let files: Vec<String> = (0..50).map(|i| format!("f{i}")).collect();
    let mut entries: Vec<_> = files
        .iter()
        .map(|f| file(f, format!("{f}\n").repeat(100).as_bytes()))
        .collect();
    entries.push(file("large", &large_file(6 << 20)));
    let layer = Layer::new(&entries);
    let mut layout = Layout::new(&tmp.path().join("bad"));
    let config = serde_json::json!({
        "architecture": "amd64",
        "os": "linux",
        "rootfs": {"type": "layers", "diff_ids": [sha256(b"not the tar")]},
    });
    let desc = layout.image_with_config(&[layer], false, config);
    layout.add(desc, Some("latest"), None);
    let err = repo.fails(&["import", &Repo::oci(&layout.dir, "latest"), "bad"]);
    assert!(err.contains("diff_id"), "{err}");
    snap.assert_unchanged(&repo.path);
}

/// `n` bytes that do not compress (xorshift output).
fn noise(n: usize, seed: u64) -> Vec<u8> {
    let mut x = seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1;
    (0..n)
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            x as u8
        })
        .collect()
}

/// A tmpfs mounted at a directory for the length of a test (needs root, as CI runs).
struct Tmpfs(std::path::PathBuf);

impl Tmpfs {
    fn mount(dir: &Path, size: &str) -> Tmpfs {
        std::fs::create_dir_all(dir).unwrap();
        let opts = format!("size={size}");
        tools::run(
            std::process::Command::new("mount")
                .args(["-t", "tmpfs", "-o", &opts, "tmpfs"])
                .arg(dir),
        );
        Tmpfs(dir.to_path_buf())
    }

    fn free(&self) -> u64 {
        let s = rustix::fs::statvfs(&self.0).unwrap();
        s.f_bfree * s.f_frsize
    }
}

impl Drop for Tmpfs {
    fn drop(&mut self) {
        let _ = std::process::Command::new("umount")
            .arg("-l")
            .arg(&self.0)
            .status();
    }
}

/// libostree's free-space reserve holds for the objects ocitree compresses itself: an import
/// that would leave less free than `core.min-free-space-size` fails naming it, the repository
/// is as before and the reserve is still free (the same import fits the file system without
/// the reserve, so it is the reserve that stops it).
#[test]
fn an_archive_import_keeps_the_repositorys_free_space_reserve() {
    let tmp = tempdir();
    // 30 MiB that do not compress: small files (buffered whole) and one streamed in blocks.
    let mut entries = vec![dir("d")];
    let names: Vec<String> = (0..160).map(|i| format!("d/f{i}")).collect();
    for (i, n) in names.iter().enumerate() {
        entries.push(file(n, &noise(128 << 10, i as u64 + 7)));
    }
    entries.push(file("big", &noise(10 << 20, 3)));
    let src_dir = tmp.path().join("img");
    Layout::single(&src_dir, &[Layer::new(&entries)]);
    let src = Repo::oci(&src_dir, "latest");

    let fs = Tmpfs::mount(&tmp.path().join("fs"), "48m");
    let repo = Repo {
        tmp: tempdir(),
        path: fs.0.join("repo"),
    };
    repo.ok(&["init", "--mode", "archive"]);
    tools::ostree(
        &repo.path,
        &["config", "set", "core.min-free-space-size", "24MB"],
    );
    let snap = repo.snapshot();
    let err = repo.fails(&["import", &src, "img"]);
    assert!(err.contains("min-free-space"), "{err}");
    snap.assert_unchanged(&repo.path);
    assert!(fs.free() >= 24 << 20, "{} bytes free", fs.free());
    tools::fsck(&repo.path);

    // One file larger than the whole file system: the reserve holds while it is written,
    // the import stops there (not on a full disk).
    let huge_dir = tmp.path().join("huge");
    Layout::single(
        &huge_dir,
        &[Layer::new(&[file("huge", &noise(50 << 20, 5))])],
    );
    let err = repo.fails(&["import", &Repo::oci(&huge_dir, "latest"), "huge"]);
    assert!(err.contains("min-free-space"), "{err}");
    snap.assert_unchanged(&repo.path);
    assert!(fs.free() >= 24 << 20, "{} bytes free", fs.free());

    // Without the reserve, the same import fits.
    tools::ostree(
        &repo.path,
        &["config", "set", "core.min-free-space-size", "0MB"],
    );
    tools::ostree(
        &repo.path,
        &["config", "set", "core.min-free-space-percent", "0"],
    );
    repo.import(&src, "img");
    assert!(fs.free() < 24 << 20, "{} bytes free", fs.free());
    tools::fsck(&repo.path);
}

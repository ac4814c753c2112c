//! Ostree native containers (bootc, rpm-ostree images): commits made by the real `ostree
//! commit`, encapsulated by the real ostree-ext, import to the identical commit.
//!
//! `data/ostree-native/` holds such images made once by `data/make-ostree-native.sh` (see
//! data/README.md); `ostree_ext_itself_*` runs that script with ostree-ext built by
//! `bench/ostree-ext-cli/build.sh`, and fails when it cannot build or run it.

use std::path::{Path, PathBuf};
use std::process::Command;

use serde_json::{Value, json};

use crate::util::*;

fn fixtures() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("data/ostree-native")
}

fn read(dir: &Path, name: &str) -> String {
    std::fs::read_to_string(dir.join(name)).unwrap()
}

/// The manifest tagged `tag` in layout `dir`.
fn manifest(dir: &Path, tag: &str) -> Value {
    let index: Value = serde_json::from_str(&read(dir, "index.json")).unwrap();
    let desc = index["manifests"]
        .as_array()
        .unwrap()
        .iter()
        .find(|m| m["annotations"]["org.opencontainers.image.ref.name"] == tag)
        .unwrap_or_else(|| panic!("no tag {tag} in {}", dir.display()));
    let digest = desc["digest"].as_str().unwrap();
    serde_json::from_str(&read(
        dir,
        &format!("blobs/sha256/{}", digest.trim_start_matches("sha256:")),
    ))
    .unwrap()
}

fn layer_digests(dir: &Path, tag: &str) -> Vec<String> {
    manifest(dir, tag)["layers"]
        .as_array()
        .unwrap()
        .iter()
        .map(|l| l["digest"].as_str().unwrap().to_string())
        .collect()
}

/// Imports `dir:tag` as `name` and checks it is commit `v` of the source repository: the
/// checksum, `ostree ls -R -X` (paths, modes, owners, sizes, xattrs, link targets), the
/// detached metadata, fsck and `inspect`.
fn import_identical(repo: &Repo, dir: &Path, tag: &str, name: &str, v: u32) -> Run {
    let expected = read(dir, &format!("commit-v{v}.txt")).trim().to_string();
    let r = repo.import(&Repo::oci(dir, tag), name);
    assert_eq!(r.commit(), expected, "the commit ostree-ext encapsulated");
    let image_ref = format!("ocitree/image/{name}");
    let listed = tools::ostree(&repo.path, &["ls", "-R", "-X", &expected]);
    assert_eq!(listed, read(dir, &format!("ls-v{v}.txt")));
    assert_eq!(
        tools::ostree(&repo.path, &["rev-parse", &image_ref]).trim(),
        expected
    );
    let show = tools::ostree(
        &repo.path,
        &[
            "show",
            "--print-detached-metadata-key=test.signature",
            &expected,
        ],
    );
    assert!(show.contains(&format!("signature of {v}")), "{show}");
    let meta = tools::ostree(
        &repo.path,
        &["show", "--print-metadata-key=ostree.bootable", &expected],
    );
    assert_eq!(meta.trim(), "true");
    tools::fsck(&repo.path);
    let inspect: Value = serde_json::from_str(&repo.ok(&["inspect", name]).stdout).unwrap();
    assert_eq!(inspect["format"], "ostree-native");
    assert_eq!(inspect["commit"], expected.as_str());
    r
}

/// Every check on a directory written by `data/make-ostree-native.sh`.
fn check_images(dir: &Path) {
    // One layer (ostree-ext's default chunking of a small commit).
    let repo = Repo::new();
    import_identical(&repo, dir, "single-v1", "single", 1);

    // Chunked with --contentmeta: the commit layer, then one layer per component.
    let repo = Repo::new();
    let v1 = layer_digests(dir, "chunked-v1");
    assert!(v1.len() >= 4, "chunked: {v1:?}");
    let r = import_identical(&repo, dir, "chunked-v1", "os", 1);
    assert_eq!(r.layers(), (v1.len(), 0));
    // Version 2 changes one component: only its chunk and the commit layer are new.
    let v2 = layer_digests(dir, "chunked-v2");
    let shared = v2.iter().filter(|d| v1.contains(d)).count();
    assert_eq!(shared, v2.len() - 2, "v1 {v1:?} v2 {v2:?}");
    let check = repo
        .ok(&["check", &Repo::oci(dir, "chunked-v2"), "os"])
        .stdout;
    assert!(check.contains("Status:   update available"), "{check}");
    let fetch = format!("Layers:   {} ({shared} present, 2 to fetch,", v2.len());
    assert!(check.contains(&fetch), "{check}");
    let r = import_identical(&repo, dir, "chunked-v2", "os", 2);
    let check = repo
        .ok(&["check", &Repo::oci(dir, "chunked-v2"), "os"])
        .stdout;
    assert!(check.contains("Status:   up to date"), "{check}");
    assert_eq!(r.layers(), (2, shared), "only the changed chunks are read");
    // The old commit's objects go with its image; the new one's stay.
    let rm = repo.ok(&["prune"]);
    assert!(rm.code == 0);
    tools::fsck(&repo.path);
    assert_eq!(
        tools::ostree(&repo.path, &["ls", "-R", "-X", "ocitree/image/os"]),
        read(dir, "ls-v2.txt")
    );
    // Re-importing the same image reads nothing.
    let again = repo.import(&Repo::oci(dir, "chunked-v2"), "os");
    assert_eq!(again.layers(), (0, v2.len()));
}

#[test]
fn ostree_ext_images_import_to_the_identical_commit() {
    check_images(&fixtures());
}

#[test]
fn an_archive_repo_gets_the_identical_commit_too() {
    let repo = Repo::with_mode("archive");
    import_identical(&repo, &fixtures(), "chunked-v1", "os", 1);
}

#[test]
fn rm_and_prune_drop_the_commit_and_keep_other_images() {
    let dir = fixtures();
    let repo = Repo::new();
    import_identical(&repo, &dir, "chunked-v1", "one", 1);
    import_identical(&repo, &dir, "chunked-v2", "two", 2);
    repo.ok(&["rm", "one"]);
    repo.ok(&["prune"]);
    tools::fsck(&repo.path);
    let c1 = read(&dir, "commit-v1.txt").trim().to_string();
    let out = Command::new("ostree")
        .arg(format!("--repo={}", repo.path.display()))
        .args(["show", &c1])
        .output()
        .unwrap();
    assert!(!out.status.success(), "commit v1 pruned");
    let two: Value = serde_json::from_str(&repo.ok(&["inspect", "two"]).stdout).unwrap();
    assert_eq!(two["format"], "ostree-native");
    assert_eq!(
        tools::ostree(&repo.path, &["ls", "-R", "-X", "ocitree/image/two"]),
        read(&dir, "ls-v2.txt")
    );
}

#[test]
fn forced_plain_reads_the_layers_as_they_are() {
    let dir = fixtures();
    let repo = Repo::new();
    let r = repo.ok(&[
        "import",
        "--format",
        "plain",
        &Repo::oci(&dir, "single-v1"),
        "flat",
    ]);
    assert_ne!(r.commit(), read(&dir, "commit-v1.txt").trim());
    let inspect: Value = serde_json::from_str(&repo.ok(&["inspect", "flat"]).stdout).unwrap();
    assert_eq!(inspect["format"], "plain");
    let ls = tools::ostree(
        &repo.path,
        &["ls", "ocitree/image/flat", "/sysroot/ostree/repo"],
    );
    assert!(ls.contains("objects"), "{ls}");
}

/// `export` gives the image back (same config and diff_ids): it imports again to the
/// identical commit.
#[test]
fn an_exported_os_image_imports_to_the_identical_commit() {
    let dir = fixtures();
    let repo = Repo::new();
    import_identical(&repo, &dir, "chunked-v1", "os", 1);
    let out = repo.tmp.path().join("exported");
    repo.ok(&["export", "os", &Repo::oci(&out, "os")]);
    let fresh = Repo::new();
    let r = fresh.import(&Repo::oci(&out, "os"), "os");
    assert_eq!(r.commit(), read(&dir, "commit-v1.txt").trim());
    tools::fsck(&fresh.path);
}

/// A checksum-named object path.
fn object(checksum: &str, kind: &str) -> String {
    format!(
        "sysroot/ostree/repo/objects/{}/{}.{kind}",
        &checksum[..2],
        &checksum[2..]
    )
}

fn hex_sha256(data: &[u8]) -> String {
    sha256(data).trim_start_matches("sha256:").to_string()
}

/// An image of `layers` labelled as ostree-ext labels the commit `commit`, the last
/// layer of the commit being `final_layer`.
fn native_image(dir: &Path, layers: &[Layer], commit: &str, final_layer: usize) {
    let diff_ids: Vec<String> = layers.iter().map(|l| sha256(&l.tar)).collect();
    let config = json!({
        "architecture": "amd64",
        "os": "linux",
        "config": {"Labels": {
            "ostree.commit": commit,
            "ostree.final-diffid": diff_ids[final_layer],
            "ostree.bootable": "true",
        }},
        "rootfs": {"type": "layers", "diff_ids": diff_ids},
    });
    let mut l = Layout::new(dir);
    let m = l.image_with_config(layers, false, config);
    l.add(m, Some("latest"), None);
}

/// A real commit object (of a one-file tree) and its checksum, made by `ostree commit`.
fn real_commit(tmp: &Path) -> (String, Vec<u8>) {
    let src = tmp.join("src");
    let tree = tmp.join("tree");
    std::fs::create_dir_all(tree.join("usr")).unwrap();
    std::fs::write(tree.join("usr/file"), b"data").unwrap();
    tools::ostree(&src, &["init", "--mode=archive"]);
    let c = tools::ostree_commit(&src, "os", &tree);
    let bytes = std::fs::read(
        src.join("objects")
            .join(&c[..2])
            .join(format!("{}.commit", &c[2..])),
    )
    .unwrap();
    (c, bytes)
}

#[test]
fn an_object_that_does_not_match_its_name_is_an_error_naming_it() {
    let tmp = tempdir();
    let (commit, commit_bytes) = real_commit(tmp.path());
    let bogus = "ab".repeat(32);
    let empty_xattrs = hex_sha256(b"");
    let cases: Vec<(&str, Vec<E>, String)> = vec![
        (
            "dirtree",
            vec![file(&object(&bogus, "dirtree"), b"\x00\x00")],
            object(&bogus, "dirtree"),
        ),
        (
            "file",
            vec![
                file(&object(&empty_xattrs, "file-xattrs"), b""),
                hardlink(
                    &object(&bogus, "file-xattrs-link"),
                    &object(&empty_xattrs, "file-xattrs"),
                ),
                file(&object(&bogus, "file"), b"content"),
            ],
            object(&bogus, "file"),
        ),
        (
            "xattrs",
            vec![file(&object(&bogus, "file-xattrs"), b"")],
            object(&bogus, "file-xattrs"),
        ),
        (
            "commit",
            vec![file(&object(&bogus, "commit"), &commit_bytes)],
            object(&bogus, "commit"),
        ),
    ];
    let repo = Repo::new();
    let snap = repo.snapshot();
    for (what, entries, path) in cases {
        let dir = tmp.path().join(what);
        let mut all = vec![file(&object(&commit, "commit"), &commit_bytes)];
        all.extend(entries);
        let layer = Layer::new(&all);
        let digest = sha256(&layer.blob);
        native_image(&dir, &[layer], &commit, 0);
        let src = Repo::oci(&dir, "latest");
        let err = repo.fails(&["import", &src, "os"]);
        assert!(
            err.contains(&src) || err.contains(dir.to_str().unwrap()),
            "{what}: names the image: {err}"
        );
        assert!(err.contains(&digest), "{what}: names the layer: {err}");
        assert!(err.contains(&path), "{what}: names the object: {err}");
        snap.assert_unchanged(&repo.path);
    }
}

/// A file object's xattrs with a NUL inside a name (`user.a\0z`, which a checkout would set
/// as `user.a`) are refused, naming layer and object, before anything is written.
#[test]
fn an_xattr_name_holding_a_nul_is_refused() {
    let tmp = tempdir();
    let (commit, commit_bytes) = real_commit(tmp.path());
    let pairs: Vec<(Vec<u8>, Vec<u8>)> = vec![
        (b"user.a\0".to_vec(), b"good".to_vec()),
        (b"user.a\0z\0".to_vec(), b"evil".to_vec()),
    ];
    let xattrs = ocitree::glib::variant::ToVariant::to_variant(&pairs)
        .data()
        .to_vec();
    let x = hex_sha256(&xattrs);
    let named = "ab".repeat(32);
    let layer = Layer::new(&[
        file(&object(&commit, "commit"), &commit_bytes),
        file(&object(&x, "file-xattrs"), &xattrs),
        hardlink(
            &object(&named, "file-xattrs-link"),
            &object(&x, "file-xattrs"),
        ),
        file(&object(&named, "file"), b"content"),
    ]);
    let digest = sha256(&layer.blob);
    native_image(tmp.path(), &[layer], &commit, 0);
    let repo = Repo::new();
    let snap = repo.snapshot();
    let err = repo.fails(&["import", &Repo::oci(tmp.path(), "latest"), "os"]);
    assert!(
        err.contains(&digest)
            && err.contains(&object(&named, "file"))
            && err.contains("holds a NUL byte"),
        "{err}"
    );
    snap.assert_unchanged(&repo.path);
}

#[test]
fn the_earliest_bad_layer_is_named_whatever_the_thread_timing() {
    // Five layers, whose objects are written two at a time: the 2nd and the 5th carry an
    // object that does not match its name; the error names the 2nd every time.
    let tmp = tempdir();
    let (commit, commit_bytes) = real_commit(tmp.path());
    let bad = |c: &str| file(&object(&c.repeat(32), "dirtree"), b"\x00\x00");
    let layers = vec![
        Layer::new(&[file(&object(&commit, "commit"), &commit_bytes)]),
        Layer::new(&[bad("ab")]),
        Layer::new(&[dir("sysroot/ostree/repo/objects/00")]),
        Layer::new(&[dir("sysroot/ostree/repo/objects/01")]),
        Layer::new(&[bad("cd")]),
    ];
    let second = sha256(&layers[1].blob);
    native_image(tmp.path(), &layers, &commit, 4);
    let repo = Repo::new();
    let snap = repo.snapshot();
    for _ in 0..4 {
        let err = repo.fails(&[
            "import",
            "--jobs",
            "2",
            &Repo::oci(tmp.path(), "latest"),
            "os",
        ]);
        assert!(err.contains(&second), "names the 2nd layer: {err}");
        assert!(err.contains(&object(&"ab".repeat(32), "dirtree")), "{err}");
        snap.assert_unchanged(&repo.path);
    }
}

#[test]
fn a_commit_whose_objects_are_missing_is_refused() {
    let tmp = tempdir();
    let (commit, commit_bytes) = real_commit(tmp.path());
    let layer = Layer::new(&[file(&object(&commit, "commit"), &commit_bytes)]);
    let dir = tmp.path().join("img");
    native_image(&dir, &[layer], &commit, 0);
    let repo = Repo::new();
    let snap = repo.snapshot();
    let err = repo.fails(&["import", &Repo::oci(&dir, "latest"), "os"]);
    assert!(err.contains("none of its layers carries"), "{err}");
    assert!(err.contains(&commit), "{err}");
    snap.assert_unchanged(&repo.path);
    // Without the commit object at all.
    let layer = Layer::new(&[dir_entry("sysroot/ostree/repo/objects/00")]);
    let dir = tmp.path().join("nocommit");
    native_image(&dir, &[layer], &commit, 0);
    let err = repo.fails(&["import", &Repo::oci(&dir, "latest"), "os"]);
    assert!(err.contains("is in none of its layers"), "{err}");
    snap.assert_unchanged(&repo.path);
}

fn dir_entry(path: &str) -> E {
    dir(path)
}

/// A derived layer (after `ostree.final-diffid`) lands where ostree-ext puts it (`etc` in
/// `usr/etc`) on the commit the image carries; the image ref is then the image commit of the
/// merged tree, which records that commit (tests/it/ostree_derived.rs compares such trees
/// with ostree-ext's own). A layer selection still cannot give the commit.
#[test]
fn a_derived_layer_is_applied_on_the_commit() {
    tools::require("umoci");
    let tmp = tempdir();
    let dir = tmp.path().join("img");
    tools::run(Command::new("cp").arg("-a").arg(fixtures()).arg(&dir));
    let tar = tmp.path().join("derived.tar");
    std::fs::write(&tar, Layer::new(&[file("etc/added", b"x")]).tar).unwrap();
    tools::run(
        Command::new("umoci")
            .args(["raw", "add-layer", "--image"])
            .arg(format!("{}:single-v1", dir.display()))
            .args(["--tag", "derived"])
            .arg(&tar),
    );
    let commit = read(&dir, "commit-v1.txt").trim().to_string();
    let repo = Repo::new();
    let src = Repo::oci(&dir, "derived");
    let snap = repo.snapshot();
    // A layer selection cannot give the commit.
    let err = repo.fails(&["import", "--layer-index", "0", &src, "os"]);
    assert!(err.contains("read whole"), "{err}");
    snap.assert_unchanged(&repo.path);
    let image = repo.import(&src, "os").commit();
    assert_ne!(image, commit);
    let ls = |rev: &str| tools::ostree(&repo.path, &["ls", "-R", "-X", rev]);
    let (base, derived) = (ls(&commit), ls("ocitree/image/os"));
    let mut expected: Vec<&str> = base.lines().collect();
    let added = "-00644 0 0      1 { @a(ayay) [] } /usr/etc/added";
    let at = expected
        .iter()
        .position(|l| l.ends_with("/usr/etc/motd"))
        .unwrap();
    expected.insert(at, added);
    assert_eq!(derived.lines().collect::<Vec<_>>(), expected);
    let recorded = tools::ostree(
        &repo.path,
        &["show", "--print-metadata-key=ocitree.ostree-base", &image],
    );
    assert_eq!(recorded.trim(), format!("'{commit}'"));
    tools::fsck(&repo.path);
}

/// The path of ostree-ext's CLI, built by the repository's own script (cached).
pub(crate) fn ostree_ext_cli() -> PathBuf {
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("bench/ostree-ext-cli/build.sh");
    let out = tools::run(Command::new("bash").arg(&script));
    let path = PathBuf::from(String::from_utf8(out.stdout).unwrap().trim());
    assert!(path.is_file(), "{script:?} gave no binary: {path:?}");
    path
}

#[test]
fn ostree_ext_itself_encapsulates_what_ocitree_imports_identically() {
    for t in ["ostree", "jq", "setfattr"] {
        tools::require(t);
    }
    let cli = ostree_ext_cli();
    let tmp = tempdir();
    let out = tmp.path().join("ostree-native");
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("data/make-ostree-native.sh");
    tools::run(
        Command::new("bash")
            .arg(&script)
            .arg(&out)
            .env("OSTREE_EXT_CLI", &cli)
            .env("TMPDIR", tmp.path()),
    );
    check_images(&out);
    // ostree-ext reads what ocitree exports of the image: the identical commit.
    let repo = Repo::new();
    import_identical(&repo, &out, "chunked-v2", "os", 2);
    let exported = tmp.path().join("exported");
    repo.ok(&["export", "os", &Repo::oci(&exported, "os")]);
    let theirs = tmp.path().join("theirs");
    tools::ostree(&theirs, &["init", "--mode=bare-user"]);
    let imported = tools::run(
        Command::new(&cli)
            .args(["container", "unencapsulate", "--quiet"])
            .arg(format!("--repo={}", theirs.display()))
            .arg(format!(
                "ostree-unverified-image:oci:{}:os",
                exported.display()
            )),
    );
    let said = String::from_utf8(imported.stdout).unwrap();
    let expected = read(&out, "commit-v2.txt").trim().to_string();
    assert!(said.contains(&expected), "ostree-ext imported {said}");
    tools::fsck(&theirs);
    // The same commits as the fixtures were made from (ostree commit is deterministic).
    for v in ["commit-v1.txt", "commit-v2.txt"] {
        assert_eq!(read(&out, v), read(&fixtures(), v));
    }
}

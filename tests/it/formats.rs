//! The ways an image is read (`src/image/format.rs`): plain, ocitree-encapsulated and
//! ostree-native, detected from the config labels or forced with `--format`.

use serde_json::json;

use crate::util::*;

/// A one-layer image shaped like an ostree-ext "ostree native container": an object store
/// under sysroot/, `/etc` at the top, and the `ostree.commit` label.
fn ostree_native_image(at: &std::path::Path) {
    let layer = Layer::new(&[
        dir("sysroot/ostree/repo/objects/ab"),
        file("sysroot/ostree/repo/objects/ab/cdef.file", b"object"),
        file(
            "sysroot/ostree/repo/config",
            b"[core]\nmode=bare-split-xattrs\n",
        ),
        file("etc/os-release", b"ID=test\n"),
        file("usr/bin/tool", b"tool"),
    ]);
    let mut l = Layout::new(at);
    let config = json!({
        "architecture": "amd64",
        "os": "linux",
        "config": {"Labels": {
            "ostree.commit": "a".repeat(64),
            "ostree.bootable": "true",
            "containers.bootc": "1",
        }},
        "rootfs": {"type": "layers", "diff_ids": [sha256(&layer.tar)]},
    });
    let m = l.image_with_config(&[layer], false, config);
    l.add(m, Some("latest"), None);
}

#[test]
fn an_ostree_native_image_is_refused_not_read_as_a_plain_tree() {
    let tmp = tempdir();
    let img = tmp.path().join("native");
    ostree_native_image(&img);
    let repo = Repo::new();
    let snap = repo.snapshot();
    let src = Repo::oci(&img, "latest");
    let err = repo.fails(&["import", &src, "os"]);
    assert!(err.contains("ostree native container"), "{err}");
    assert!(err.contains("--format plain"), "{err}");
    assert!(err.contains(&"a".repeat(64)), "names the commit: {err}");
    snap.assert_unchanged(&repo.path);
    // Asked for, the plain reading applies the layers as they are, exactly as umoci does.
    let r = repo.ok(&["import", "--format", "plain", &src, "os"]);
    repo.assert_matches_umoci(&r.commit(), &img, "latest");
    let inspect: serde_json::Value =
        serde_json::from_str(&repo.ok(&["inspect", "os"]).stdout).unwrap();
    assert_eq!(inspect["format"], "plain");
}

#[test]
fn a_forced_format_must_match_the_labels() {
    let tmp = tempdir();
    let img = tmp.path().join("plain");
    Layout::single(&img, &[Layer::new(&[file("a", b"a")])]);
    let repo = Repo::new();
    let snap = repo.snapshot();
    let src = Repo::oci(&img, "latest");
    for format in ["ocitree-encapsulated", "ostree-native"] {
        let err = repo.fails(&["import", "--format", format, &src, "x"]);
        assert!(err.contains("labels say plain"), "{err}");
    }
    snap.assert_unchanged(&repo.path);
    let err = repo.run(&["import", "--format", "native", &src, "x"]);
    assert_eq!(err.code, 2, "clap rejects an unknown format: {err:?}");
}

#[test]
fn inspect_names_an_encapsulated_image_as_such() {
    let tmp = tempdir();
    let src_repo = tmp.path().join("src");
    let tree = tmp.path().join("tree");
    std::fs::create_dir_all(tree.join("usr")).unwrap();
    std::fs::write(tree.join("usr/file"), b"data").unwrap();
    tools::ostree(&src_repo, &["init", "--mode=bare-user"]);
    let commit = tools::ostree_commit(&src_repo, "main", &tree);
    let out = tmp.path().join("oci");
    let src = Repo {
        tmp: tempdir(),
        path: src_repo.clone(),
    };
    src.ok(&["encapsulate", "main", &format!("oci:{}:v1", out.display())]);
    let repo = Repo::new();
    let r = repo.ok(&["import", &Repo::oci(&out, "v1"), "os"]);
    assert_eq!(r.commit(), commit, "the identical commit");
    let inspect: serde_json::Value =
        serde_json::from_str(&repo.ok(&["inspect", "os"]).stdout).unwrap();
    assert_eq!(inspect["format"], "ocitree-encapsulated");
    // Forced plain, the same image is only its tree: a commit of ocitree's own.
    let plain = repo.ok(&[
        "import",
        "--format",
        "plain",
        &Repo::oci(&out, "v1"),
        "flat",
    ]);
    assert_ne!(plain.commit(), commit);
    let inspect: serde_json::Value =
        serde_json::from_str(&repo.ok(&["inspect", "flat"]).stdout).unwrap();
    assert_eq!(inspect["format"], "plain");
    // The same manifest under one name, read the other way, is not "up to date": each
    // reading gives its own commit, both ways round.
    for (format, want) in [("plain", plain.commit()), ("ocitree-encapsulated", commit)] {
        let r = repo.ok(&["import", "--format", format, &Repo::oci(&out, "v1"), "os"]);
        assert_eq!(r.commit(), want, "{format}");
        let inspect: serde_json::Value =
            serde_json::from_str(&repo.ok(&["inspect", "os"]).stdout).unwrap();
        assert_eq!(inspect["format"], format);
    }
}

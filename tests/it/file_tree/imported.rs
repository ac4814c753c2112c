//! An imported file tree is an image like the others: `images` lists it (format `file-tree`,
//! size = its distinct blobs), `inspect` shows its record, `check` compares a source with it,
//! and `export` writes the very artifact it came from (same root digest, same blobs) or,
//! when the tree would not give that root again, refuses and writes nothing.

use std::path::Path;

use serde_json::Value;

use super::{Tree, blob, documents, json_file, rich_tree, root_digest};
use crate::util::*;

/// Every blob file of a layout, by name.
fn blob_names(layout: &Path) -> std::collections::BTreeSet<String> {
    std::fs::read_dir(layout.join("blobs/sha256"))
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect()
}

/// Sum of the sizes of the distinct file blobs of a file-tree layout.
fn file_bytes(layout: &Path) -> u64 {
    let mut docs = Vec::new();
    documents(layout, &root_digest(layout), "", &mut docs);
    let mut blobs = std::collections::BTreeMap::new();
    for (_, d) in &docs {
        for l in d["layers"].as_array().into_iter().flatten() {
            blobs.insert(l["digest"].to_string(), l["size"].as_u64().unwrap());
        }
    }
    blobs.values().sum()
}

/// rich_tree sharded 3 files per manifest, as `oci:<work>/layout:v1`.
fn encapsulated(t: &Tree) -> std::path::PathBuf {
    rich_tree(t);
    t.commit("main");
    let layout = t.work("layout");
    let dest = format!("oci:{}:v1", layout.display());
    t.ocitree(&[
        "encapsulate",
        "--format=file-tree",
        "--max-blobs=3",
        "main",
        &dest,
    ]);
    layout
}

#[test]
fn an_imported_file_tree_is_listed_inspected_checked_and_exported_as_it_came() {
    let t = Tree::new();
    let layout = encapsulated(&t);
    let root = root_digest(&layout);
    let src = Repo::oci(&layout, "v1");
    let repo = Repo::new();

    // Before the import: every manifest of files is to fetch.
    let before = repo.ok(&["check", &src, "tree"]);
    assert_eq!(before.field("Manifest"), root);
    assert_eq!(before.field("Status"), "not imported");
    assert!(before.field("Layers").contains("(0 present"), "{before:?}");

    repo.import(&src, "tree");
    // A plain image beside it: both are listed.
    let plain = Layout::single(&t.work("plain"), &[Layer::new(&[file("a", b"a\n")])]);
    repo.import(&Repo::oci(&plain.dir, "latest"), "plain");
    let images = repo.ok(&["images"]);
    let row = |name: &str| -> Vec<String> {
        let line = images
            .stdout
            .lines()
            .find(|l| l.starts_with(&format!("{name} ")));
        let line = line.unwrap_or_else(|| panic!("{name} not listed: {images:?}"));
        line.split_whitespace().map(String::from).collect()
    };
    let tree = row("tree");
    assert_eq!(tree[1], root);
    assert_eq!(tree[3], file_bytes(&layout).to_string());
    assert_eq!(tree[4], "file-tree");
    assert_eq!(row("plain")[4], "plain");

    let inspect: Value = serde_json::from_str(&repo.ok(&["inspect", "tree"]).stdout).unwrap();
    assert_eq!(inspect["format"], "file-tree");
    assert_eq!(inspect["manifest_digest"], root.as_str());
    assert_eq!(inspect["manifest"], json_file(&blob(&layout, &root)));
    assert_eq!(inspect["file_tree"]["max_blobs"], 3);
    // 8 + 5 + ... files; "same content" three times, one blob.
    let files = inspect["file_tree"]["files"].as_u64().unwrap();
    let blobs = inspect["file_tree"]["blobs"].as_u64().unwrap();
    assert_eq!(files, blobs + 2, "{inspect}");
    for l in inspect["layers"].as_array().unwrap() {
        assert!(l["commit"].is_string(), "layer without its commit: {l}");
    }

    // After it: up to date, nothing to fetch.
    let after = repo.ok(&["check", &src, "tree"]);
    assert_eq!(after.field("Status"), "up to date");
    assert!(
        after.field("Layers").contains(" 0 to fetch, 0 bytes)"),
        "{after:?}"
    );

    // export: the same root, the same documents and blobs, byte for byte.
    let out = t.work("out");
    let r = repo.ok(&["export", "tree", &Repo::oci(&out, "v2")]);
    assert_eq!(r.field("Root"), root);
    assert_eq!(root_digest(&out), root);
    assert_eq!(blob_names(&out), blob_names(&layout));
    for name in blob_names(&out) {
        let p = |l: &Path| l.join("blobs/sha256").join(&name);
        assert_eq!(
            std::fs::read(p(&out)).unwrap(),
            std::fs::read(p(&layout)).unwrap()
        );
    }
    // To standard output: the archive there, the summary on stderr.
    let piped = repo
        .cmd()
        .args(["export", "tree", "oci-archive:-"])
        .output()
        .unwrap();
    assert!(piped.status.success(), "{piped:?}");
    assert!(String::from_utf8_lossy(&piped.stderr).contains(&root));
    let archive = t.work("piped.tar");
    std::fs::write(&archive, &piped.stdout).unwrap();
    let fresh = Repo::new();
    let again = fresh.import(&format!("oci-archive:{}", archive.display()), "tree");
    assert_eq!(again.field("Manifest"), root);

    // Its blobs are its files: no recompression, and nothing written when asked for one.
    let zstd = t.work("zstd");
    let err = repo.fails(&[
        "export",
        "--compression=zstd",
        "tree",
        &Repo::oci(&zstd, "v1"),
    ]);
    assert!(err.contains("file tree"), "{err}");
    assert!(!zstd.exists());
}

#[test]
fn an_export_that_would_not_give_the_imported_root_writes_nothing() {
    let t = Tree::new();
    let layout = encapsulated(&t);
    // A producer that annotates its root: the tree alone cannot give that document again.
    let root = root_digest(&layout);
    let mut doc = json_file(&blob(&layout, &root));
    doc["annotations"]["org.example.made-by"] = "another tool".into();
    let bytes = serde_json::to_vec(&doc).unwrap();
    let digest = image::sha256(&bytes);
    std::fs::write(blob(&layout, &digest), &bytes).unwrap();
    let mut index = json_file(&layout.join("index.json"));
    index["manifests"][0]["digest"] = digest.clone().into();
    index["manifests"][0]["size"] = bytes.len().into();
    std::fs::write(
        layout.join("index.json"),
        serde_json::to_vec(&index).unwrap(),
    )
    .unwrap();

    let repo = Repo::new();
    let r = repo.import(&Repo::oci(&layout, "v1"), "tree");
    assert_eq!(r.field("Manifest"), digest);

    // A new layout: not created.
    let out = t.work("out");
    let err = repo.fails(&["export", "tree", &Repo::oci(&out, "v1")]);
    assert!(
        err.contains(&digest) && err.contains("nothing written"),
        "{err}"
    );
    assert!(!out.exists(), "a refused export left {}", out.display());
    // An existing layout: its index and blobs as they were.
    let index_before = std::fs::read(layout.join("index.json")).unwrap();
    let blobs_before = blob_names(&layout);
    repo.fails(&["export", "tree", &Repo::oci(&layout, "v2")]);
    assert_eq!(
        std::fs::read(layout.join("index.json")).unwrap(),
        index_before
    );
    assert_eq!(blob_names(&layout), blobs_before);
    let leftovers: Vec<_> = std::fs::read_dir(&layout)
        .unwrap()
        .map(|e| e.unwrap().file_name())
        .filter(|n| !["blobs", "index.json", "oci-layout"].contains(&n.to_str().unwrap()))
        .collect();
    assert!(leftovers.is_empty(), "{leftovers:?}");
}

#[test]
fn images_lists_the_others_when_one_cannot_be_read() {
    let repo = Repo::new();
    let tmp = tempdir();
    let good = Layout::single(
        &tmp.path().join("good"),
        &[Layer::new(&[file("a", b"a\n")])],
    );
    repo.import(&Repo::oci(&good.dir, "latest"), "good");
    repo.import(&Repo::oci(&good.dir, "latest"), "bad");
    // "bad" now points at a commit ocitree did not write (no metadata).
    let inspect: Value = serde_json::from_str(&repo.ok(&["inspect", "bad"]).stdout).unwrap();
    let bad_ref = inspect["ref"].as_str().unwrap();
    let empty = tmp.path().join("empty");
    std::fs::create_dir(&empty).unwrap();
    tools::ostree_commit(&repo.path, bad_ref, &empty);

    let r = repo.run(&["images"]);
    assert_eq!(r.code, 2, "{r:?}");
    assert!(r.stdout.lines().any(|l| l.starts_with("good ")), "{r:?}");
    assert!(!r.stdout.lines().any(|l| l.starts_with("bad ")), "{r:?}");
    assert!(
        r.stderr.contains("bad") && r.stderr.contains("no ocitree metadata"),
        "{r:?}"
    );
}

//! Hostile or unclear input: titles that would escape or clash, blobs that are no tar where
//! one must be, indexes that need a choice. Each is an error that names image, layer and
//! title (or lists the choices), quotes no blob bytes, and leaves the repository as it was.

use serde_json::json;

use super::*;

/// One artifact per title set in its own layout; returns the import source.
fn titled(tmp: &Path, name: &str, titles: &[&str]) -> (String, Vec<String>) {
    let dir = tmp.join(name);
    let mut l = Layout::new(&dir);
    let layers: Vec<(&str, Vec<u8>, Value)> = titles
        .iter()
        .enumerate()
        .map(|(i, t)| {
            (
                JSON,
                format!("{{\"n\": {i}}}").into_bytes(),
                json!({"org.opencontainers.image.title": t}),
            )
        })
        .collect();
    let digests = layers.iter().map(|(_, d, _)| sha256(d)).collect();
    let desc = manifest(&l, Some("application/vnd.example"), (EMPTY, b"{}"), &layers);
    l.add(desc, Some("v1"), None);
    (Repo::oci(&dir, "v1"), digests)
}

#[test]
fn hostile_titles_are_refused() {
    let tmp = tempdir();
    let repo = Repo::new();
    repo.import(&titled(tmp.path(), "ok", &["fine.json"]).0, "before");
    let snap = Snapshot::take(&repo.path);
    let cases: &[(&[&str], &str)] = &[
        (&["../x"], "`..` segment"),
        (&["a/../../x"], "`..` segment"),
        (&["/etc/passwd"], "absolute path"),
        (&[""], "is empty"),
        (&["a/.wh.b"], "whiteout"),
        (
            &["same.json", "same.json"],
            "both be the file \"same.json\"",
        ),
        (&["conf", "conf/x.json"], "cannot also be a directory"),
    ];
    for (i, (titles, why)) in cases.iter().enumerate() {
        let (src, digests) = titled(tmp.path(), &format!("bad{i}"), titles);
        let e = repo.fails(&["import", &src, "x"]);
        assert!(
            e.contains(why) && e.contains(&src) && e.contains(&digests[titles.len() - 1]),
            "{titles:?}: {e}"
        );
        assert!(!e.contains(": not found"), "{e}");
    }
    // a --copy name is a title too
    let (src, _) = titled(tmp.path(), "copy", &["fine.json"]);
    let e = repo.fails(&[
        "import",
        &src,
        "x",
        "--copy",
        &format!("{JSON}=../../etc/x"),
    ]);
    assert!(e.contains("`..` segment"), "{e}");
    snap.assert_unchanged(&repo.path);
    // per-dir: the same title in two layers is no clash (each has its directory)
    let (src, _) = titled(tmp.path(), "dup", &["same.json", "same.json"]);
    repo.ok(&["import", &src, "perdir", "--layers", "per-dir"]);
}

/// A container image layer that is no tar, and an `--extract` of a blob that is none: an
/// error naming the layer and media type, the blob's bytes (escape sequences here) never
/// quoted, the repository unchanged.
#[test]
fn no_tar_where_one_must_be() {
    let tmp = tempdir();
    let garbage: Vec<u8> = b"\x1b[31mRED\x1b]0;title\x07"
        .iter()
        .copied()
        .cycle()
        .take(2048)
        .collect();
    let dir = tmp.path().join("img");
    Layout::single(&dir, &[Layer::with(garbage.clone(), Comp::Gzip, false)]);
    let repo = Repo::new();
    let snap = Snapshot::take(&repo.path);
    let e = repo.fails(&["import", &Repo::oci(&dir, "latest"), "img"]);
    assert!(
        e.contains("no tar header")
            && e.contains(&sha256(&compress(&garbage, Comp::Gzip)))
            && e.contains("--copy application/vnd.oci.image.layer.v1.tar+gzip"),
        "{e}"
    );
    assert!(
        !e.contains("RED") && !e.contains('\u{1b}'),
        "blob bytes echoed: {e}"
    );

    let dir = tmp.path().join("art");
    let mut l = Layout::new(&dir);
    let desc = manifest(
        &l,
        Some("application/vnd.example"),
        (EMPTY, b"{}"),
        &[("application/x-thing", garbage.clone(), json!({}))],
    );
    l.add(desc, Some("v1"), None);
    let e = repo.fails(&[
        "import",
        &Repo::oci(&dir, "v1"),
        "x",
        "--extract",
        "application/x-thing",
    ]);
    assert!(
        e.contains("no tar header") && e.contains(&sha256(&garbage)),
        "{e}"
    );
    assert!(!e.contains("RED"), "{e}");
    snap.assert_unchanged(&repo.path);
    // without --extract it is a file, byte for byte
    let r = repo.ok(&["import", &Repo::oci(&dir, "v1"), "x"]);
    let name = format!("/sha256-{}", sha256(&garbage).trim_start_matches("sha256:"));
    let co = checkout(&repo, &r.commit(), tmp.path());
    assert_eq!(std::fs::read(co.join(&name[1..])).unwrap(), garbage);
}

/// An index of artifacts: with no selector, the error lists each manifest's artifactType and
/// suggests --artifact-type; an unknown type lists the types there are; no ": not found".
#[test]
fn index_errors_show_artifact_types() {
    let tmp = tempdir();
    let dir = tmp.path().join("idx");
    let mut l = Layout::new(&dir);
    let sbom = artifact(
        &l,
        "application/spdx+json",
        &[(JSON, b"{}".to_vec(), Some("sbom.json"))],
    );
    let sig = artifact(
        &l,
        "application/vnd.example.signature",
        &[(JSON, b"s".to_vec(), Some("sig.json"))],
    );
    l.add(sbom.clone(), None, None);
    l.add(sig.clone(), None, None);
    let src = format!("oci:{}", dir.display());
    let repo = Repo::new();
    let snap = Snapshot::take(&repo.path);
    let e = repo.fails(&["import", &src, "x"]);
    assert!(
        e.contains("2 manifests match")
            && e.contains("--artifact-type")
            && e.contains("artifactType application/spdx+json")
            && e.contains("artifactType application/vnd.example.signature")
            && e.contains(sbom["digest"].as_str().unwrap()),
        "{e}"
    );
    let e = repo.fails(&[
        "import",
        &src,
        "x",
        "--artifact-type",
        "application/nothing",
    ]);
    assert!(
        e.contains("no manifest of artifact type \"application/nothing\"")
            && e.contains("\"application/spdx+json\" ×1")
            && e.contains("\"application/vnd.example.signature\" ×1"),
        "{e}"
    );
    assert!(!e.contains("not found"), "{e}");
    snap.assert_unchanged(&repo.path);
}

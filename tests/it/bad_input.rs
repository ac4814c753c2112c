//! Bad input: exit code 2, an error naming the image and layer (and path), and a repository
//! exactly as before — no new refs, no new objects, `ostree fsck` clean.

use serde_json::json;

use crate::util::*;

/// Writes a one-layer image whose layer is `blob` as given, with descriptor `size` and
/// config `diff_id` as given; returns (layout dir, layer digest).
fn raw_image(
    tmp: &tempfile::TempDir,
    blob: &[u8],
    size: Option<u64>,
    diff_id: &str,
) -> (std::path::PathBuf, String) {
    let dir = tmp.path().join("img");
    let mut l = Layout::new(&dir);
    let (ld, ls) = l.put(blob);
    let config = json!({"architecture": "amd64", "os": "linux", "rootfs": {"type": "layers", "diff_ids": [diff_id]}});
    let (cd, cs) = l.put(&serde_json::to_vec(&config).unwrap());
    let manifest = json!({
        "schemaVersion": 2,
        "mediaType": "application/vnd.oci.image.manifest.v1+json",
        "config": {"mediaType": "application/vnd.oci.image.config.v1+json", "digest": cd, "size": cs},
        "layers": [{"mediaType": "application/vnd.oci.image.layer.v1.tar+gzip", "digest": ld, "size": size.unwrap_or(ls)}],
    });
    let (md, ms) = l.put(&serde_json::to_vec(&manifest).unwrap());
    l.add(json!({"mediaType": "application/vnd.oci.image.manifest.v1+json", "digest": md, "size": ms}), Some("latest"), None);
    (dir, ld)
}

/// Imports a good image first (so "unchanged" is checked against a non-empty repo), then the
/// bad one; returns stderr after checking exit code, names and the unchanged repo.
fn rejects(dir: &std::path::Path, layer: &str, expect: &[&str]) -> String {
    let repo = Repo::new();
    let good = tempdir();
    Layout::single(
        &good.path().join("img"),
        &[Layer::new(&[file("ok", b"ok")])],
    );
    repo.import(&Repo::oci(&good.path().join("img"), "latest"), "good");
    let snap = repo.snapshot();
    let src = Repo::oci(dir, "latest");
    let err = repo.fails(&["import", &src, "bad"]);
    assert!(
        err.contains(&format!("image {src}")),
        "names the image: {err}"
    );
    assert!(
        err.contains(&format!("layer {layer}")),
        "names the layer: {err}"
    );
    for e in expect {
        assert!(err.contains(e), "expected {e:?} in: {err}");
    }
    snap.assert_unchanged(&repo.path);
    err
}

fn tar_entries() -> Vec<u8> {
    tar_of(&[dir("d"), file("d/a", &[7u8; 3000]), file("d/b", b"bee")])
}

#[test]
fn wrong_blob_digest() {
    let tar = tar_entries();
    let tmp = tempdir();
    let (dir, layer) = raw_image(&tmp, &tar, None, &sha256(&tar));
    // same size, one byte of file data changed: the tar still parses, only the digest is off
    let mut bad = tar.clone();
    bad[512 * 2 + 10] ^= 1;
    std::fs::write(
        dir.join("blobs/sha256")
            .join(layer.trim_start_matches("sha256:")),
        &bad,
    )
    .unwrap();
    rejects(&dir, &layer, &["digest mismatch"]);
}

#[test]
fn wrong_size() {
    let blob = compress(&tar_entries(), Comp::Gzip);
    let tmp = tempdir();
    let (dir, layer) = raw_image(
        &tmp,
        &blob,
        Some(blob.len() as u64 + 1),
        &sha256(&tar_entries()),
    );
    rejects(&dir, &layer, &["size mismatch"]);
    let tmp = tempdir();
    let (dir, layer) = raw_image(
        &tmp,
        &blob,
        Some(blob.len() as u64 - 1),
        &sha256(&tar_entries()),
    );
    rejects(&dir, &layer, &["size mismatch"]);
}

#[test]
fn wrong_diff_id() {
    let blob = compress(&tar_entries(), Comp::Gzip);
    let tmp = tempdir();
    let (dir, layer) = raw_image(&tmp, &blob, None, &sha256(b"something else"));
    rejects(&dir, &layer, &["diff_id mismatch"]);
}

#[test]
fn truncated_gzip() {
    let blob = compress(&tar_entries(), Comp::Gzip);
    let cut = &blob[..blob.len() / 2];
    let tmp = tempdir();
    let (dir, layer) = raw_image(&tmp, cut, None, &sha256(&tar_entries()));
    rejects(&dir, &layer, &["decompressing blob"]);
}

#[test]
fn corrupt_tar_header() {
    let mut tar = tar_entries();
    tar[512 + 148] = b'9'; // checksum field of the second header
    let tmp = tempdir();
    let (dir, layer) = raw_image(&tmp, &compress(&tar, Comp::Gzip), None, &sha256(&tar));
    rejects(&dir, &layer, &["cksum", "d/a"]);
}

#[test]
fn path_traversal() {
    for (entries, needle) in [
        (vec![file("../x", b"x")], "../x"),
        (vec![dir("a"), file("a/../../x", b"x")], "a/../../x"),
        (
            vec![file("a", b"a"), hardlink("b", "../../etc/passwd")],
            "escapes the root",
        ),
    ] {
        let tar = tar_of(&entries);
        let tmp = tempdir();
        let (dir, layer) = raw_image(&tmp, &compress(&tar, Comp::Gzip), None, &sha256(&tar));
        rejects(&dir, &layer, &[needle]);
    }
}

#[test]
fn non_utf8_name() {
    let tar = tar_of(&[E::RawFile {
        path: b"caf\xe9".to_vec(),
        data: b"x".to_vec(),
    }]);
    let tmp = tempdir();
    let (dir, layer) = raw_image(&tmp, &compress(&tar, Comp::Gzip), None, &sha256(&tar));
    rejects(&dir, &layer, &["not UTF-8", "caf\\xe9"]);
}

#[test]
fn hardlink_to_nothing() {
    let tar = tar_of(&[hardlink("b", "nowhere")]);
    let tmp = tempdir();
    let (dir, layer) = raw_image(&tmp, &compress(&tar, Comp::Gzip), None, &sha256(&tar));
    rejects(&dir, &layer, &["\"nowhere\"", "does not exist"]);
}

#[test]
fn missing_blob_and_bad_digest_string() {
    let tar = tar_entries();
    let tmp = tempdir();
    let (dir, layer) = raw_image(&tmp, &compress(&tar, Comp::Gzip), None, &sha256(&tar));
    std::fs::remove_file(
        dir.join("blobs/sha256")
            .join(layer.trim_start_matches("sha256:")),
    )
    .unwrap();
    let repo = Repo::new();
    let snap = repo.snapshot();
    let err = repo.fails(&["import", &Repo::oci(&dir, "latest"), "x"]);
    assert!(err.contains(&layer) && err.contains("not found"), "{err}");
    snap.assert_unchanged(&repo.path);
    // a digest is never a path
    let mut idx: serde_json::Value =
        serde_json::from_slice(&std::fs::read(dir.join("index.json")).unwrap()).unwrap();
    idx["manifests"][0]["digest"] = json!("sha256:../../../../etc/passwd");
    std::fs::write(dir.join("index.json"), serde_json::to_vec(&idx).unwrap()).unwrap();
    let err = repo.fails(&["import", &Repo::oci(&dir, "latest"), "x"]);
    assert!(err.contains("invalid digest"), "{err}");
    snap.assert_unchanged(&repo.path);
}

/// A name whose escaped ref would not fit in a file name is refused before anything is
/// written (it used to fail only when the transaction committed the ref); 255 bytes fit.
#[test]
fn too_long_image_name_is_refused_up_front() {
    let tmp = tempdir();
    Layout::single(&tmp.path().join("img"), &[Layer::new(&[file("a", b"a")])]);
    let src = Repo::oci(&tmp.path().join("img"), "latest");
    let repo = Repo::new();
    let snap = repo.snapshot();
    let err = repo.fails(&["import", &src, &"x".repeat(256)]);
    assert!(
        err.contains("image name too long") && err.contains("256 bytes"),
        "{err}"
    );
    // ':' escapes to 3 bytes: 85 of them make 255
    let err = repo.fails(&["import", &src, &":".repeat(86)]);
    assert!(err.contains("258 bytes"), "{err}");
    snap.assert_unchanged(&repo.path);
    let longest = ":".repeat(85);
    repo.import(&src, &longest);
    assert_eq!(repo.ok(&["cat", &longest, "/a"]).stdout, "a");
}

//! Blobs come back as they were: an extracted artifact layer keeps its compressed blob
//! through `rm` and `prune` of the images that used it as a tree; a container image layer
//! whose gzip blob a `.tar` media type mislabels goes back compressed, under that media type.

use serde_json::{Value, json};

use super::*;

const FLUX: &str = "application/vnd.cncf.flux.content.v1.tar+gzip";

/// A Flux artifact manifest whose one layer is `content`; its descriptor.
fn flux_manifest(l: &Layout, content: &[u8]) -> Value {
    manifest(
        l,
        None,
        ("application/vnd.cncf.flux.config.v1+json", b"{}"),
        &[(FLUX, content.to_vec(), json!({}))],
    )
}

/// The tree commit of an extracted Flux layer is pruned once no image lists its diff_id; the
/// blob, kept by an image that holds it as a file, still gives the tree (read again from the
/// repository, not the source) and the original manifest digest.
#[test]
fn extracted_blob_survives_prune() {
    let tmp = tempdir();
    let layout = tmp.path().join("flux");
    let mut l = Layout::new(&layout);
    let content = compress(
        &tar_of(&[
            dir("deploy"),
            file("deploy/app.yaml", b"kind: Deployment\n"),
        ]),
        Comp::Gzip,
    );
    let desc = flux_manifest(&l, &content);
    l.add(desc.clone(), Some("v1"), None);
    let src = Repo::oci(&layout, "v1");
    let repo = Repo::new();
    repo.import(&src, "tree");
    repo.ok(&["import", &src, "file", "--copy", FLUX]);
    repo.ok(&["rm", "tree"]);
    repo.ok(&["prune"]);
    tools::fsck(&repo.path);
    // the source is gone: whatever comes now comes from the repository
    std::fs::remove_dir_all(&layout).unwrap();
    let mut l = Layout::new(&layout);
    let desc2 = flux_manifest(&l, &content);
    assert_eq!(desc2, desc);
    l.add(desc2, Some("v1"), None);
    std::fs::remove_file(l.blob_path(&sha256(&content))).unwrap();
    let r = repo.ok(&["import", &src, "again"]);
    assert_eq!(r.layers(), (0, 1), "{r:?}");
    let oracle = tmp.path().join("oracle");
    untar(&content, &oracle);
    tree::assert_same(&checkout(&repo, &r.commit(), tmp.path()), &oracle);
    for name in ["again", "file"] {
        let (digest, out) = export_digest(&repo, name, tmp.path());
        assert_eq!(digest, desc["digest"].as_str().unwrap(), "{name}: {out}");
    }
    tools::fsck(&repo.path);
}

/// A container image whose gzip layer is labelled `application/vnd.oci.image.layer.v1.tar`
/// (as some tools write): export compresses it again and keeps the media type, instead of
/// writing a plain tar under it.
#[test]
fn mislabelled_gzip_layer_goes_back_compressed() {
    let tmp = tempdir();
    let dir = tmp.path().join("img");
    let mut l = Layout::new(&dir);
    let tar = tar_of(&[file("etc/os-release", b"ID=test\n")]);
    let blob = compress(&tar, Comp::Gzip);
    let (ld, ls) = l.put(&blob);
    let config = json!({
        "architecture": "amd64", "os": "linux",
        "rootfs": {"type": "layers", "diff_ids": [sha256(&tar)]},
    });
    let (cd, cs) = l.put(&serde_json::to_vec(&config).unwrap());
    let m = json!({
        "schemaVersion": 2,
        "mediaType": "application/vnd.oci.image.manifest.v1+json",
        "config": {"mediaType": "application/vnd.oci.image.config.v1+json", "digest": cd, "size": cs},
        "layers": [{"mediaType": "application/vnd.oci.image.layer.v1.tar", "digest": ld, "size": ls}],
    });
    let (md, ms) = l.put(&serde_json::to_vec(&m).unwrap());
    l.add(
        json!({"mediaType": "application/vnd.oci.image.manifest.v1+json", "digest": md, "size": ms}),
        Some("v1"),
        None,
    );
    let repo = Repo::new();
    repo.import(&Repo::oci(&dir, "v1"), "img");
    let out = tmp.path().join("out");
    repo.ok(&["export", "img", &format!("oci:{}:v1", out.display())]);
    let index: Value =
        serde_json::from_slice(&std::fs::read(out.join("index.json")).unwrap()).unwrap();
    let read = |d: &str| {
        std::fs::read(
            out.join("blobs/sha256")
                .join(d.trim_start_matches("sha256:")),
        )
        .unwrap()
    };
    let manifest: Value =
        serde_json::from_slice(&read(index["manifests"][0]["digest"].as_str().unwrap())).unwrap();
    let layer = &manifest["layers"][0];
    assert_eq!(layer["mediaType"], "application/vnd.oci.image.layer.v1.tar");
    let written = read(layer["digest"].as_str().unwrap());
    assert_eq!(&written[..2], &[0x1f, 0x8b], "gzip, as the original blob");
    let mut plain = Vec::new();
    std::io::Read::read_to_end(&mut flate2::read::GzDecoder::new(&written[..]), &mut plain)
        .unwrap();
    assert_eq!(plain, tar);
}

/// An artifact's extracted layer whose tree was stored under other layer rules (an earlier
/// ocitree's) and is read again for a container image that uses the same blob: the layer
/// commit keeps the blob, as the artifact's did, so the artifact still exports to its
/// manifest digest.
#[test]
fn a_layer_read_again_keeps_its_artifact_blob() {
    let tmp = tempdir();
    let layout = tmp.path().join("flux");
    let mut l = Layout::new(&layout);
    let tar = tar_of(&[
        dir("deploy"),
        file("deploy/app.yaml", b"kind: Deployment\n"),
    ]);
    // level 9: bytes an export would not write again from the tree
    let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::best());
    std::io::Write::write_all(&mut gz, &tar).unwrap();
    let content = gz.finish().unwrap();
    let desc = flux_manifest(&l, &content);
    l.add(desc.clone(), Some("v1"), None);
    let repo = Repo::new();
    repo.import(&Repo::oci(&layout, "v1"), "flux");
    let blob_ref = format!("ocitree/blob/sha256/{}", &sha256(&content)[7..]);
    let diffid_ref = format!("ocitree/diffid/sha256/{}", &sha256(&tar)[7..]);
    let artifact = tools::ostree(&repo.path, &["rev-parse", &blob_ref]);
    let tree = tools::ostree(&repo.path, &["rev-parse", &diffid_ref]);
    assert_ne!(artifact, tree, "an artifact commit apart from its tree's");
    // What an earlier build left: the tree without a rules version, the artifact naming it.
    let stale = tools::ostree(
        &repo.path,
        &[
            "commit",
            "--branch",
            &diffid_ref,
            &format!("--tree=ref={tree}"),
        ],
    );
    tools::ostree(
        &repo.path,
        &[
            "commit",
            "--branch",
            &blob_ref,
            &format!("--tree=ref={artifact}"),
            "--add-metadata-string=ocitree.layer.kind=file",
            &format!(
                "--add-metadata-string=ocitree.layer.tree-commit={}",
                stale.trim()
            ),
        ],
    );
    // A container image with the same blob as its layer (tree only, were it read first).
    let image = Layer {
        tar: tar.clone(),
        blob: content.clone(),
        media_type: "application/vnd.oci.image.layer.v1.tar+gzip".into(),
    };
    let image = l.image(&[image], false);
    l.add(image, Some("image"), None);
    let r = repo.ok(&["import", &Repo::oci(&layout, "image"), "image"]);
    assert_eq!(r.layers(), (1, 0), "read again: {r:?}");
    let kept = tools::ostree(&repo.path, &["rev-parse", &blob_ref]);
    let meta = tools::ostree(
        &repo.path,
        &[
            "show",
            "--print-metadata-key=ocitree.layer.tree-commit",
            &kept,
        ],
    );
    assert_eq!(
        meta.trim().trim_matches('\''),
        tools::ostree(&repo.path, &["rev-parse", &diffid_ref]).trim(),
        "the blob ref names an artifact commit holding the blob and its tree again"
    );
    let (digest, out) = export_digest(&repo, "flux", tmp.path());
    assert_eq!(digest, desc["digest"].as_str().unwrap(), "{out}");
    tools::fsck(&repo.path);
}

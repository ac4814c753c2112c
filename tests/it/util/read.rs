//! Reading OCI layouts back: index, manifests, configs and blobs as written by ocitree or the
//! builders of [`super::image`].

use std::path::{Path, PathBuf};

use serde_json::Value;

/// A JSON file.
pub fn json(p: &Path) -> Value {
    serde_json::from_slice(&std::fs::read(p).unwrap()).unwrap()
}

/// The file of blob `digest` in `layout`.
pub fn blob_path(layout: &Path, digest: &str) -> PathBuf {
    layout
        .join("blobs/sha256")
        .join(digest.trim_start_matches("sha256:"))
}

/// The bytes of blob `digest` in `layout`.
pub fn blob(layout: &Path, digest: &str) -> Vec<u8> {
    std::fs::read(blob_path(layout, digest)).unwrap()
}

/// (manifest digest, manifest, config) of the only image of a layout.
pub fn image_of(layout: &Path) -> (String, Value, Value) {
    let index = json(&layout.join("index.json"));
    let digest = index["manifests"][0]["digest"]
        .as_str()
        .unwrap()
        .to_string();
    let manifest = json(&blob_path(layout, &digest));
    let config = json(&blob_path(
        layout,
        manifest["config"]["digest"].as_str().unwrap(),
    ));
    (digest, manifest, config)
}

/// (manifest, manifest digest) of LAYOUT:TAG.
pub fn manifest_of(layout: &Path, tag: &str) -> (Value, String) {
    let index = json(&layout.join("index.json"));
    let desc = index["manifests"]
        .as_array()
        .unwrap()
        .iter()
        .find(|m| m["annotations"]["org.opencontainers.image.ref.name"] == tag)
        .unwrap_or_else(|| panic!("no tag {tag} in {index}"))
        .clone();
    let digest = desc["digest"].as_str().unwrap().to_string();
    (json(&blob_path(layout, &digest)), digest)
}

/// The layer digests of the only image of a layout.
pub fn layer_digests(layout: &Path) -> Vec<String> {
    let (_, m, _) = image_of(layout);
    m["layers"]
        .as_array()
        .unwrap()
        .iter()
        .map(|l| l["digest"].as_str().unwrap().to_string())
        .collect()
}

/// The uncompressed tar of blob `digest` (gzip, zstd or none, read from its magic bytes).
pub fn layer_tar(layout: &Path, digest: &str) -> Vec<u8> {
    let data = blob(layout, digest);
    let mut tar = Vec::new();
    std::io::Read::read_to_end(
        &mut ocitree::decompress::decompress(&data[..]).unwrap(),
        &mut tar,
    )
    .unwrap();
    tar
}

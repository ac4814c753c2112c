//! A `docker save` archive (`docker-archive:FILE[:REFERENCE]`), read in place.
//!
//! The archive's `manifest.json` lists, per image, a config member, its tags (`RepoTags`) and
//! its layer members. ocitree presents it as an OCI layout: an index with one manifest per
//! image (tagged with each of its `RepoTags`), each a docker v2 schema 2 manifest synthesised
//! from the members. A layer's blob digest is its diff_id when the member is an uncompressed
//! tar (what `docker save` writes); a compressed member is hashed once at open, however many
//! times (and under whatever links) `manifest.json` names it. Every digest is still verified
//! while the layer streams in. An image `manifest.json` lists more than once (the same config,
//! tags and layers) is one image.

use std::collections::{HashMap, HashSet};
use std::io::Read;
use std::path::Path;

use serde::Deserialize;
use serde_json::json;

use crate::blob::BlobReader;
use crate::decompress::Compression;
use crate::digest::{Digest, Hasher};
use crate::entries::path;
use crate::error::{Error, Result, cut};
use crate::source::Source;
use crate::source::tar_index::TarIndex;
use crate::spec::{ANNOTATION_REF_NAME, Config, MEDIA_TYPE_DOCKER_MANIFEST, MEDIA_TYPE_INDEX};

#[derive(Debug, Deserialize, PartialEq, Eq, Hash)]
#[serde(rename_all = "PascalCase")]
struct ArchiveImage {
    config: String,
    #[serde(default)]
    repo_tags: Option<Vec<String>>,
    layers: Vec<String>,
}

/// Where a blob of the synthesised layout lives.
#[derive(Debug)]
enum Blob {
    Member(String),
    Memory(Vec<u8>),
}

/// A docker-archive presented as an OCI layout.
#[derive(Debug)]
pub struct DockerArchive {
    tar: TarIndex,
    index: Vec<u8>,
    blobs: HashMap<String, Blob>,
}

impl DockerArchive {
    /// Opens an archive file.
    ///
    /// # Errors
    /// The file is not a readable docker-archive.
    pub fn open(p: &Path) -> Result<DockerArchive> {
        Self::from_tar(TarIndex::open(
            format!("docker-archive:{}", p.display()),
            p,
        )?)
    }

    /// Reads an archive from standard input.
    ///
    /// # Errors
    /// As [`DockerArchive::open`].
    pub fn from_stdin() -> Result<DockerArchive> {
        Self::from_tar(TarIndex::from_stdin("docker-archive:-".into())?)
    }

    fn from_tar(tar: TarIndex) -> Result<DockerArchive> {
        let invalid = |reason: String| Error::InvalidImage {
            image: tar.name().to_string(),
            reason,
        };
        let images: Vec<ArchiveImage> = serde_json::from_slice(&tar.read_member("manifest.json")?)
            .map_err(|e| invalid(format!("manifest.json: {e}")))?;
        let mut blobs = HashMap::new();
        let mut manifests = Vec::new();
        // descriptors already in the index, and images already read
        let mut listed = HashSet::new();
        let mut seen = HashSet::new();
        // the digest of each compressed layer member hashed so far, by where its data is
        let mut hashed = HashMap::new();
        for img in &images {
            if !seen.insert(img) {
                continue;
            }
            let member = |p: &str| -> Result<String> {
                Ok(path::normalize(p.as_bytes())
                    .map_err(|e| invalid(format!("manifest.json: {e}")))?
                    .join("/"))
            };
            let config_key = member(&img.config)?;
            let config_bytes = tar.read_member(&config_key)?;
            let config: Config = serde_json::from_slice(&config_bytes)
                .map_err(|e| invalid(format!("{}: {e}", cut(&config_key))))?;
            if config.rootfs.diff_ids.len() != img.layers.len() {
                return Err(invalid(format!(
                    "{} has {} diff_ids for {} layers",
                    cut(&config_key),
                    config.rootfs.diff_ids.len(),
                    img.layers.len()
                )));
            }
            let config_digest = Digest::sha256_of(&config_bytes);
            let mut layers = Vec::new();
            for (layer, diff_id) in img.layers.iter().zip(&config.rootfs.diff_ids) {
                let key = member(layer)?;
                let size = tar.size(&key)?;
                let (digest, media_type) = layer_digest(&tar, &key, diff_id, &mut hashed)?;
                layers.push(
                    json!({"mediaType": media_type, "digest": digest.as_str(), "size": size}),
                );
                blobs.insert(digest.to_string(), Blob::Member(key));
            }
            let manifest = serde_json::to_vec(&json!({
                "schemaVersion": 2,
                "mediaType": MEDIA_TYPE_DOCKER_MANIFEST,
                "config": {
                    "mediaType": "application/vnd.docker.container.image.v1+json",
                    "digest": config_digest.as_str(),
                    "size": config_bytes.len(),
                },
                "layers": layers,
            }))
            .expect("JSON values serialize");
            let manifest_digest = Digest::sha256_of(&manifest);
            let desc = json!({"mediaType": MEDIA_TYPE_DOCKER_MANIFEST, "digest": manifest_digest.as_str(), "size": manifest.len()});
            match img.repo_tags.as_deref() {
                Some(tags) if !tags.is_empty() => {
                    for t in tags {
                        let mut d = desc.clone();
                        d["annotations"] = json!({ ANNOTATION_REF_NAME: t });
                        if listed.insert(d.to_string()) {
                            manifests.push(d);
                        }
                    }
                }
                _ => {
                    if listed.insert(desc.to_string()) {
                        manifests.push(desc);
                    }
                }
            }
            blobs.insert(config_digest.to_string(), Blob::Memory(config_bytes));
            blobs.insert(manifest_digest.to_string(), Blob::Memory(manifest));
        }
        let index = serde_json::to_vec(
            &json!({"schemaVersion": 2, "mediaType": MEDIA_TYPE_INDEX, "manifests": manifests}),
        )
        .expect("JSON values serialize");
        Ok(DockerArchive { tar, index, blobs })
    }
}

/// The blob digest and media type of a layer member: its diff_id if it is a plain tar,
/// else the hash of its bytes, taken from `hashed` (by where the member's data is) when it
/// was hashed before, and kept there.
fn layer_digest(
    tar: &TarIndex,
    key: &str,
    diff_id: &str,
    hashed: &mut HashMap<(u64, u64), Digest>,
) -> Result<(Digest, &'static str)> {
    const COMPRESSED: &str = "application/vnd.docker.image.rootfs.diff.tar.gzip";
    let at = tar.locate(key)?;
    if let Some(d) = hashed.get(&at) {
        return Ok((d.clone(), COMPRESSED));
    }
    let mut head = Vec::new();
    tar.open_member(key)?
        .take(4)
        .read_to_end(&mut head)
        .map_err(Error::io(format!("reading {}", cut(key))))?;
    if Compression::sniff(&head) == Compression::None {
        return Ok((
            Digest::parse(diff_id)?,
            "application/vnd.docker.image.rootfs.diff.tar",
        ));
    }
    let mut h = Hasher::sha256();
    let mut r = tar.open_member(key)?;
    let mut buf = vec![0u8; 256 << 10];
    loop {
        let n = r
            .read(&mut buf)
            .map_err(Error::io(format!("reading {}", cut(key))))?;
        if n == 0 {
            break;
        }
        h.update(&buf[..n]);
    }
    let digest = h.finish();
    hashed.insert(at, digest.clone());
    Ok((digest, COMPRESSED))
}

impl Source for DockerArchive {
    fn index(&mut self) -> Result<Vec<u8>> {
        Ok(self.index.clone())
    }

    fn open_blob(&mut self, digest: &Digest) -> Result<BlobReader> {
        match self.blobs.get(digest.as_str()) {
            Some(Blob::Member(key)) => self.tar.open_member(key),
            Some(Blob::Memory(bytes)) => Ok(Box::new(std::io::Cursor::new(bytes.clone()))),
            None => Err(self.tar.not_found(&format!("blob {digest}"))),
        }
    }
}

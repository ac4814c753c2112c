//! Export of an imported image: its config byte for byte, and every layer tar rebuilt from
//! the layer commit's tar-split, checked against its diff_id, compressed as it was imported.

use ostree::Repo;
use serde_json::{Value, json};

use crate::decompress::Compression;
use crate::digest::Digest;
use crate::digest::Hasher;
use crate::error::{Error, Result};
use crate::export::compress::{LayerCompression, describes_compressed_bytes};
use crate::export::layer::{
    check_diff_id, copy_artifact, exact_gzip_records, is_artifact, rebuild_tar,
};
use crate::export::sink::Sink;
use crate::image::{ImageInfo, refs};
use crate::source::SourceRef;
use crate::spec::MEDIA_TYPE_MANIFEST;

/// Options of [`export_image`].
#[derive(Clone, Debug, Default)]
#[non_exhaustive]
pub struct ExportOptions {
    /// Compress every layer this way; `None` keeps each layer's own compression (gzip at
    /// level 6, zstd at level 3, or none).
    pub compression: Option<LayerCompression>,
    /// How to reach a registry destination (credentials, TLS, timeouts).
    pub registry: crate::registry::RegistryOptions,
}

impl ExportOptions {
    /// Options with every default.
    pub fn new() -> Self {
        Self::default()
    }
}

/// What an export wrote.
#[derive(Clone, Debug)]
#[non_exhaustive]
pub struct ExportReport {
    /// Digest of the manifest written; for a docker archive, which has none, the config's
    /// digest (the image ID `docker load` reports).
    pub manifest_digest: String,
    /// Whether that is the manifest the image was imported with.
    pub manifest_unchanged: bool,
    /// Layers whose compressed blob differs from the original (the tar inside does not).
    pub recompressed: usize,
    /// Layers written.
    pub layers: usize,
    /// Every layer blob written, in manifest order.
    pub layer_blobs: Vec<LayerExport>,
}

/// How one layer blob was written.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum BlobMethod {
    /// The tar, uncompressed (as it was imported, or for a docker archive).
    Plain,
    /// The original gzip bytes, rebuilt from the exact-gzip data recorded at import.
    ExactGzip,
    /// Compressed again, deterministically; why the original bytes were not rebuilt.
    Recompressed(String),
    /// An artifact blob, copied back unchanged.
    Copied,
}

/// One layer blob an export wrote.
#[derive(Clone, Debug)]
#[non_exhaustive]
pub struct LayerExport {
    /// Blob digest in the image's manifest.
    pub original: String,
    /// Blob digest written (equal to `original` when the digest was kept).
    pub written: String,
    /// How the blob was made.
    pub method: BlobMethod,
    /// Annotations of the layer's descriptor removed because they described the original
    /// blob's bytes ([`describes_compressed_bytes`]), not the blob written.
    pub dropped_annotations: Vec<String>,
}

impl LayerExport {
    /// Whether the blob kept its digest.
    pub fn kept(&self) -> bool {
        self.original == self.written
    }
}

/// Removes from layer descriptor `desc` the annotations that described its original blob's
/// bytes (and the `annotations` member when nothing else is left); returns their keys.
fn drop_blob_annotations(desc: &mut Value) -> Vec<String> {
    let Some(annotations) = desc.get_mut("annotations").and_then(Value::as_object_mut) else {
        return Vec::new();
    };
    let dropped: Vec<String> = annotations
        .keys()
        .filter(|k| describes_compressed_bytes(k))
        .cloned()
        .collect();
    for k in &dropped {
        annotations.remove(k);
    }
    if annotations.is_empty()
        && let Some(d) = desc.as_object_mut()
    {
        d.remove("annotations");
    }
    dropped
}

/// How an imported layer's blob was compressed: none when its digest is its diff_id, else
/// what its media type says, and gzip when that says none (tools label gzip tarballs `.tar`:
/// the blob goes back compressed, under its media type).
fn blob_compression(media_type: &str, digest: &Digest, diff_id: &Digest) -> Compression {
    match Compression::from_media_type(media_type) {
        _ if digest == diff_id => Compression::None,
        Compression::None => Compression::Gzip,
        c => c,
    }
}

/// Exports image `name` to `dest` (`oci:DIR[:TAG]`, `oci-archive:FILE[:TAG]`,
/// `docker-archive:FILE[:REFERENCE]`; `-` for standard output; `docker://REFERENCE` pushes,
/// see [`super::push_image`]).
///
/// # Errors
/// The image or a layer is missing, a layer cannot be rebuilt exactly, writing fails; a
/// digest selector in `dest` is refused.
pub fn export_image(
    repo: &Repo,
    name: &str,
    dest: &SourceRef,
    opts: &ExportOptions,
) -> Result<ExportReport> {
    // What it reads stays until it is done: a `prune` waits.
    let _lock = crate::repo::RepoLock::reading(&crate::repo::dir(repo))?;
    if let SourceRef::Registry(r) = dest {
        let (mut report, pushed) = super::push_image(repo, name, r, opts)?;
        report.manifest_digest = pushed.manifest_digest;
        return Ok(report);
    }
    let info = ImageInfo::load(repo, name)?;
    if info.file_tree.is_some() {
        return Err(Error::InvalidImage {
            image: name.to_string(),
            reason: "a file tree is written by crate::export::file_tree::export_file_tree".into(),
        });
    }
    info.check_complete()?;
    let mut sink = Sink::open(dest)?;
    let mut manifest: Value =
        serde_json::from_str(&info.manifest).map_err(|e| Error::InvalidImage {
            image: name.into(),
            reason: format!("stored manifest: {e}"),
        })?;
    let mut recompressed = 0;
    let mut layer_blobs = Vec::new();
    for (i, (digest, diff_id)) in info.layers.iter().zip(&info.diff_ids).enumerate() {
        let (digest, diff_id) = (Digest::parse(digest)?, Digest::parse(diff_id)?);
        let commit = refs::find_layer(repo, &digest, Some(&diff_id))?.ok_or_else(|| {
            Error::NotFound(format!("image {name}: layer {digest} (was it pruned?)"))
        })?;
        let desc = &mut manifest["layers"][i];
        let media_type = desc["mediaType"].as_str().unwrap_or_default().to_string();
        let what = format!("layer {diff_id}");
        if is_artifact(repo, &commit)? {
            if sink.is_docker() {
                return Err(Error::InvalidImage {
                    image: name.into(),
                    reason: format!(
                        "layer {digest} is an artifact blob, not a tar: a docker archive cannot hold it (export to oci: instead)"
                    ),
                });
            }
            let none = LayerCompression::new(Compression::None);
            let out = sink.add_layer(&none, Hasher::sha256(), &what, &mut |out| {
                copy_artifact(repo, &commit, out)
            })?;
            if out.digest != digest {
                return Err(Error::InvalidImage {
                    image: name.into(),
                    reason: format!("artifact layer {digest} reads back as {}", out.digest),
                });
            }
            layer_blobs.push(LayerExport {
                original: digest.to_string(),
                written: out.digest.to_string(),
                method: BlobMethod::Copied,
                dropped_annotations: Vec::new(),
            });
            continue;
        }
        let own = blob_compression(&media_type, &digest, &diff_id);
        // The original gzip bytes where the import recorded how to rebuild them.
        let mut why = match (&opts.compression, own) {
            (Some(_), _) => "--compression asked for it".to_string(),
            (None, Compression::Zstd) => "zstd layers are re-compressed".into(),
            _ => String::new(),
        };
        let mut exact = None;
        if !sink.is_docker() && opts.compression.is_none() && own == Compression::Gzip {
            match exact_gzip_records(repo, &commit, &digest)? {
                Err(w) => why = w,
                Ok(records) => {
                    match sink.add_exact_gzip_layer(
                        &records,
                        &digest,
                        diff_id.hasher()?,
                        &what,
                        &mut |tar| rebuild_tar(repo, &commit, &diff_id, tar),
                    ) {
                        Ok(Some(out)) => exact = Some(out),
                        Ok(None) => why = "the exact rebuild gave another blob".into(),
                        Err(e) => why = format!("the exact rebuild failed: {e}"),
                    }
                }
            }
        }
        let compression = opts
            .compression
            .unwrap_or_else(|| LayerCompression::new(own));
        let (out, method) = match exact {
            Some(out) => (out, BlobMethod::ExactGzip),
            None => {
                let out = sink.add_layer(&compression, diff_id.hasher()?, &what, &mut |tar| {
                    rebuild_tar(repo, &commit, &diff_id, tar)
                })?;
                let plain = sink.is_docker() || compression.kind == Compression::None;
                let method = if plain {
                    BlobMethod::Plain
                } else {
                    BlobMethod::Recompressed(why)
                };
                (out, method)
            }
        };
        check_diff_id(&out, &diff_id)?;
        let mut dropped_annotations = Vec::new();
        if out.digest != digest && !sink.is_docker() {
            recompressed += 1;
            desc["digest"] = json!(out.digest.as_str());
            desc["size"] = json!(out.size);
            // The media type the layer had, unless the compression changed (--compression):
            // a Flux layer stays a Flux layer.
            if compression.kind != own {
                desc["mediaType"] = json!(compression.media_type(&media_type));
            }
            dropped_annotations = drop_blob_annotations(desc);
        }
        layer_blobs.push(LayerExport {
            original: digest.to_string(),
            written: out.digest.to_string(),
            method,
            dropped_annotations,
        });
    }
    let manifest_bytes = if recompressed == 0 {
        info.manifest.clone().into_bytes()
    } else {
        serde_json::to_vec(&manifest).expect("JSON values serialize")
    };
    let media_type = manifest["mediaType"]
        .as_str()
        .unwrap_or(MEDIA_TYPE_MANIFEST)
        .to_string();
    let docker = sink.is_docker();
    let digest = sink.finish(info.config.as_bytes(), &manifest_bytes, &media_type)?;
    Ok(ExportReport {
        manifest_unchanged: !docker && digest.as_str() == info.manifest_digest,
        manifest_digest: digest.to_string(),
        recompressed,
        layers: info.layers.len(),
        layer_blobs,
    })
}

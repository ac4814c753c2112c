//! Export of an imported image: its config byte for byte, and every layer tar rebuilt from
//! the layer commit's tar-split, checked against its diff_id, compressed as it was imported.

use ostree::Repo;
use serde_json::{Value, json};

use crate::decompress::Compression;
use crate::digest::Digest;
use crate::digest::Hasher;
use crate::error::{Error, Result};
use crate::export::compress::LayerCompression;
use crate::export::layer::{check_diff_id, copy_artifact, is_artifact, rebuild_tar};
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
    /// Digest of the manifest written (of `manifest.json` for a docker archive).
    pub manifest_digest: String,
    /// Whether that is the manifest the image was imported with.
    pub manifest_unchanged: bool,
    /// Layers whose compressed blob differs from the original (the tar inside does not).
    pub recompressed: usize,
    /// Layers written.
    pub layers: usize,
}

/// Exports image `name` to `dest` (`oci:DIR[:TAG]`, `oci-archive:FILE[:TAG]`,
/// `docker-archive:FILE[:REFERENCE]`; `-` for standard output; `docker://REFERENCE` pushes,
/// see [`crate::registry::push_image`]).
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
    if let SourceRef::Registry(r) = dest {
        let (mut report, pushed) = crate::registry::push_image(repo, name, r, opts)?;
        report.manifest_digest = pushed.manifest_digest;
        return Ok(report);
    }
    let info = ImageInfo::load(repo, name)?;
    info.check_complete()?;
    let mut sink = Sink::open(dest)?;
    let mut manifest: Value =
        serde_json::from_str(&info.manifest).map_err(|e| Error::InvalidImage {
            image: name.into(),
            reason: format!("stored manifest: {e}"),
        })?;
    let mut recompressed = 0;
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
            continue;
        }
        let compression = opts
            .compression
            .unwrap_or_else(|| LayerCompression::new(Compression::from_media_type(&media_type)));
        let out = sink.add_layer(&compression, diff_id.hasher()?, &what, &mut |tar| {
            rebuild_tar(repo, &commit, &diff_id, tar)
        })?;
        check_diff_id(&out, &diff_id)?;
        if out.digest != digest && !sink.is_docker() {
            recompressed += 1;
            desc["digest"] = json!(out.digest.as_str());
            desc["size"] = json!(out.size);
            desc["mediaType"] = json!(compression.media_type(&media_type));
        }
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
    })
}

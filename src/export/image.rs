//! Export of an imported image: its config byte for byte, and every layer tar rebuilt from
//! the layer commit's tar-split, checked against its diff_id, compressed as it was imported.

use ostree::Repo;
use serde_json::{Value, json};

use crate::decompress::Compression;
use crate::digest::Digest;
use crate::error::{Error, Result};
use crate::export::layer::{check_diff_id, rebuild_tar};
use crate::export::sink::Sink;
use crate::image::{ImageInfo, refs};
use crate::source::SourceRef;
use crate::spec::MEDIA_TYPE_MANIFEST;

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
/// `docker-archive:FILE[:REFERENCE]`; `-` for standard output).
///
/// # Errors
/// The image or a layer is missing, a layer cannot be rebuilt exactly, writing fails; a
/// digest selector in `dest` is refused.
pub fn export_image(repo: &Repo, name: &str, dest: &SourceRef) -> Result<ExportReport> {
    let info = ImageInfo::load(repo, name)?;
    let mut sink = Sink::open(dest)?;
    let mut manifest: Value =
        serde_json::from_str(&info.manifest).map_err(|e| Error::InvalidImage {
            image: name.into(),
            reason: format!("stored manifest: {e}"),
        })?;
    let mut recompressed = 0;
    for (i, (digest, diff_id)) in info.layers.iter().zip(&info.diff_ids).enumerate() {
        let (digest, diff_id) = (Digest::parse(digest)?, Digest::parse(diff_id)?);
        let commit = refs::find_layer(repo, &digest, &diff_id)?.ok_or_else(|| {
            Error::NotFound(format!("image {name}: layer {digest} (was it pruned?)"))
        })?;
        let desc = &mut manifest["layers"][i];
        let compression =
            Compression::from_media_type(desc["mediaType"].as_str().unwrap_or_default());
        let what = format!("layer {diff_id}");
        let out = sink.add_layer(compression, diff_id.hasher()?, &what, &mut |tar| {
            rebuild_tar(repo, &commit, &diff_id, tar)
        })?;
        check_diff_id(&out, &diff_id)?;
        if out.digest != digest && !sink.is_docker() {
            recompressed += 1;
            desc["digest"] = json!(out.digest.as_str());
            desc["size"] = json!(out.size);
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

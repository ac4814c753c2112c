//! The first step of an import: open the source, pick the manifest, read and check the
//! config, and pair layers with diff_ids. Reads no layer blob.

use ostree::Repo;

use crate::digest::Digest;
use crate::error::{Error, Result};
use crate::image::{ImageInfo, refs};
use crate::import::{ImportOptions, default_name};
use crate::layer::stream::LayerBlob;
use crate::refname;
use crate::resolve::{self, Resolved};
use crate::select::{self, LayerSelection};
use crate::source::{Source, SourceRef};
use crate::spec::Config;

/// An image ready to import.
#[derive(Debug)]
#[non_exhaustive]
pub struct Prepared {
    /// The source, as a string for messages.
    pub image: String,
    /// The open source, for the layer blobs.
    pub src: Box<dyn Source>,
    /// The chosen manifest.
    pub resolved: Resolved,
    /// The parsed config.
    pub config: Config,
    /// The config, byte for byte.
    pub config_str: String,
    /// The manifest, byte for byte.
    pub manifest_str: String,
    /// Layers with their diff_ids, base first.
    pub layers: Vec<LayerBlob>,
    /// The local image name.
    pub name: String,
}

/// Opens `source` and reads what an import needs before its layers.
///
/// # Errors
/// The source cannot be opened, no single manifest matches, or manifest or config are
/// invalid or do not match their digests.
pub fn prepare(source: &SourceRef, opts: &ImportOptions) -> Result<Prepared> {
    let image = source.to_string();
    let mut src = source.open()?;
    let resolved = resolve::resolve(
        src.as_mut(),
        &image,
        source.selector(),
        opts.platform.as_ref(),
        opts.artifact_type.as_deref(),
    )?;
    let config_bytes = resolve::read_blob(src.as_mut(), &image, &resolved.manifest.config)?;
    let invalid = |reason: String| Error::InvalidImage {
        image: image.clone(),
        reason,
    };
    let config: Config =
        serde_json::from_slice(&config_bytes).map_err(|e| invalid(format!("config: {e}")))?;
    let layers = layer_blobs(&image, &resolved, &config, &opts.layers)?;
    let name = opts
        .name
        .clone()
        .unwrap_or_else(|| default_name(source, &resolved));
    refname::check_image_name(&name)?;
    let manifest_str = String::from_utf8(resolved.bytes.clone())
        .map_err(|_| invalid("manifest is not UTF-8".into()))?;
    let config_str =
        String::from_utf8(config_bytes).map_err(|_| invalid("config is not UTF-8".into()))?;
    Ok(Prepared {
        image,
        src,
        resolved,
        config,
        config_str,
        manifest_str,
        layers,
        name,
    })
}

/// The commit of image `name` if it already is this manifest and config with every layer
/// present.
///
/// # Errors
/// libostree fails.
pub fn up_to_date(
    repo: &Repo,
    name: &str,
    manifest_digest: &str,
    config: &str,
) -> Result<Option<String>> {
    let Some(commit) = refs::resolve(repo, &refname::image_ref(name))? else {
        return Ok(None);
    };
    let Ok(info) = ImageInfo::load_commit(repo, name, &commit) else {
        return Ok(None);
    };
    let same = info.manifest_digest == manifest_digest
        && info.config == config
        && info
            .layers
            .iter()
            .all(|l| refs::resolve(repo, &refname::blob_ref(l)).is_ok_and(|c| c.is_some()));
    Ok(same.then_some(commit))
}

/// Pairs the manifest's layer descriptors with the config's diff_ids, validating both, and
/// keeps the selected layers. An artifact's config (often `{}`) lists no diff_ids: they are
/// then computed, not checked. Artifact layers (not filesystem tars) get their file names.
fn layer_blobs(
    image: &str,
    resolved: &Resolved,
    config: &Config,
    selection: &LayerSelection,
) -> Result<Vec<LayerBlob>> {
    let descs = &resolved.manifest.layers;
    let diff_ids = &config.rootfs.diff_ids;
    let artifact = resolved.manifest.artifact_type().is_some();
    let paired = !(artifact && diff_ids.is_empty());
    if paired && descs.len() != diff_ids.len() {
        return Err(Error::InvalidImage {
            image: image.to_string(),
            reason: format!(
                "manifest lists {} layers but the config has {} diff_ids",
                descs.len(),
                diff_ids.len()
            ),
        });
    }
    selection
        .apply(image, descs)?
        .into_iter()
        .map(|i| {
            let d = &descs[i];
            let digest = d.digest()?;
            let tar = select::is_tar_layer(&d.media_type);
            let diff_id = match (paired && tar, diff_ids.get(i)) {
                (true, Some(id)) => Some(Digest::parse(id)?),
                _ => None,
            };
            let file_name = (!tar)
                .then(|| select::file_name(image, d, &digest))
                .transpose()?;
            Ok(LayerBlob {
                digest,
                size: d.size,
                diff_id,
                media_type: d.media_type.clone(),
                file_name,
            })
        })
        .collect()
}

//! The first step of an import: open the source, pick the manifest, read and check the
//! config, and pair layers with diff_ids. Reads no layer blob.

use crate::digest::Digest;
use crate::error::{Error, Result};

use crate::import::{ImportOptions, default_name};
use crate::layer::stream::LayerBlob;
use crate::progress::Event;
use crate::refname;
use crate::resolve::{self, Resolved};
use crate::select::{self, LayersMode, rules};
use crate::source::{Selector, Source, SourceRef};
use crate::spec::{self, Config};

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
    prepare_with(source, source.open_with(&opts.registry)?, opts)
}

/// [`prepare`] with `src`, the source already open.
///
/// # Errors
/// As [`prepare`].
pub fn prepare_with(
    source: &SourceRef,
    mut src: Box<dyn Source>,
    opts: &ImportOptions,
) -> Result<Prepared> {
    let image = source.to_string();
    let resolved = resolve::resolve(
        src.as_mut(),
        &image,
        source.selector(),
        opts.platform.as_ref(),
        opts.artifact_type.as_deref(),
    )?;
    if let (Some(p), false) = (&resolved.platform, resolved.passed_over.is_empty()) {
        opts.progress.emit(Event::PlatformFirstOfSeveral {
            image: image.clone(),
            platform: p.to_string(),
            chosen: resolved.digest.to_string(),
            others: resolved
                .passed_over
                .iter()
                .map(|d| by_digest(source, d))
                .collect(),
        });
    }
    // Stored with the image, they must read back as `inspect` and `export` read them.
    spec::check_readable_back(
        &image,
        &format!("manifest {}", resolved.digest),
        &resolved.bytes,
    )?;
    let config_bytes = resolve::read_blob(src.as_mut(), &image, &resolved.manifest.config)?;
    spec::check_readable_back(
        &image,
        &format!("config {}", resolved.manifest.config.digest_str),
        &config_bytes,
    )?;
    let invalid = |reason: String| Error::InvalidImage {
        image: image.clone(),
        reason,
    };
    let config: Config =
        serde_json::from_slice(&config_bytes).map_err(|e| invalid(format!("config: {e}")))?;
    let layers = layer_blobs(&image, &resolved, &config, &config_bytes, opts)?;
    let name = opts
        .name
        .clone()
        .unwrap_or_else(|| default_name(source, &resolved));
    if name.trim().is_empty() {
        return Err(Error::InvalidName {
            name,
            reason: "an image name cannot be empty or only whitespace".into(),
        });
    }
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

/// `source` naming manifest `digest` (`SOURCE@DIGEST`): how to pick it instead.
fn by_digest(source: &SourceRef, digest: &Digest) -> String {
    let selector = Selector::Digest(digest.clone());
    let s = match source.clone() {
        SourceRef::OciDir { path, .. } => SourceRef::OciDir { path, selector },
        SourceRef::OciArchive { path, .. } => SourceRef::OciArchive { path, selector },
        SourceRef::DockerArchive { path, .. } => SourceRef::DockerArchive { path, selector },
        SourceRef::Registry(mut r) => {
            r.digest = Some(digest.clone());
            r.tag = None;
            SourceRef::Registry(r)
        }
    };
    s.to_string()
}

/// Pairs the manifest's layer descriptors with the config's diff_ids, validating both, and
/// keeps the selected layers. An artifact's config (often `{}`) lists no diff_ids: they are
/// then computed, not checked. Each layer gets its [`select::Treatment`] (tar or file, see
/// [`rules`]); in one merged tree, no two files may land on the same path.
fn layer_blobs(
    image: &str,
    resolved: &Resolved,
    config: &Config,
    config_bytes: &[u8],
    opts: &ImportOptions,
) -> Result<Vec<LayerBlob>> {
    let descs = &resolved.manifest.layers;
    let diff_ids = &config.rootfs.diff_ids;
    let is_image = resolved.manifest.is_image();
    let invalid = |reason: String| Error::InvalidImage {
        image: image.to_string(),
        reason,
    };
    config
        .rootfs
        .check(descs.len(), is_image)
        .map_err(invalid)?;
    let config_media_type = resolved.manifest.config.media_type.as_str();
    let cx = rules::Context {
        image,
        is_image,
        config_media_type,
        helm: (config_media_type == rules::HELM_CONFIG)
            .then(|| rules::helm_name(config_bytes))
            .flatten(),
        rules: &opts.layer_rules,
        selected: &opts.layers.media_types,
    };
    let paired = !diff_ids.is_empty() || is_image;
    let blobs: Vec<LayerBlob> = opts
        .layers
        .apply(image, descs)?
        .into_iter()
        .map(|i| {
            let d = &descs[i];
            let digest = d.digest()?;
            let treatment = cx.treatment(d, &digest)?;
            // A layer that turns out a file ignores it.
            let tar = !matches!(treatment, select::Treatment::File(_));
            let diff_id = match (paired && tar, diff_ids.get(i)) {
                (true, Some(id)) => Some(Digest::parse(id)?),
                _ => None,
            };
            Ok(LayerBlob {
                digest,
                size: d.size,
                diff_id,
                media_type: d.media_type.clone(),
                treatment,
            })
        })
        .collect::<Result<_>>()?;
    if opts.layers_mode == LayersMode::Merge {
        select::title::check_unique(
            image,
            blobs
                .iter()
                .filter_map(|b| b.treatment.file().map(|p| (&b.digest, p))),
        )?;
    }
    Ok(blobs)
}

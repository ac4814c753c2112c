//! Update check: what an import would read, from the manifest and config alone.

use ostree::Repo;

use crate::error::Result;
use crate::image::format::reading;
use crate::image::refs;
use crate::import::{ImportOptions, file_tree, prepare_with, up_to_date};
use crate::source::SourceRef;

/// One layer of a checked image.
#[derive(Clone, Debug)]
#[non_exhaustive]
pub struct LayerStatus {
    /// Blob digest.
    pub digest: String,
    /// diff_id (`None` for an artifact layer, or when the config lists none).
    pub diff_id: Option<String>,
    /// Blob size in bytes.
    pub size: u64,
    /// Whether the repo has it already (by blob digest or diff_id): it would not be read.
    pub present: bool,
}

/// What [`check`] found.
#[derive(Clone, Debug)]
#[non_exhaustive]
pub struct CheckReport {
    /// The local image name.
    pub name: String,
    /// The source's manifest digest.
    pub manifest_digest: String,
    /// The repository has an image of this name (else an import adds a new one).
    pub imported: bool,
    /// The manifest digest the image of this name has now, if it has one.
    pub imported_manifest: Option<String>,
    /// The image already is this manifest, every layer stored under the current layer rules:
    /// an import would do nothing. (The same manifest with a layer stored under other rules
    /// is not up to date: the import reads that layer again.)
    pub up_to_date: bool,
    /// Every layer, base first.
    pub layers: Vec<LayerStatus>,
}

impl CheckReport {
    /// Bytes an import would read: the sizes of the layers not present.
    pub fn bytes_to_fetch(&self) -> u64 {
        self.layers
            .iter()
            .filter(|l| !l.present)
            .fold(0u64, |n, l| n.saturating_add(l.size))
    }
}

/// Reads only the manifest and config of `source` and reports which layers an import would
/// read (for a file tree: its documents, and which manifests of files it would read). Writes
/// nothing.
///
/// # Errors
/// As [`crate::import::prepare`].
pub fn check(repo: &Repo, source: &SourceRef, opts: &ImportOptions) -> Result<CheckReport> {
    let mut src = source.open_with(&opts.registry)?;
    // A file tree has no config: its manifests are its layers.
    if let Some(root) =
        file_tree::detect(src.as_mut(), &source.to_string(), source.selector(), opts)?
    {
        return file_tree::check(repo, source, src, &root, opts);
    }
    let p = prepare_with(source, src, opts)?;
    let format = reading(&p.image, &p.config.labels(), opts.format)?.format();
    let mut layers = Vec::with_capacity(p.layers.len());
    let mut stored = Vec::with_capacity(p.layers.len());
    for l in &p.layers {
        // what an import would reuse (not a layer stored under other rules)
        let present = super::read_layers::present_layer(repo, l)?;
        layers.push(LayerStatus {
            digest: l.digest.to_string(),
            diff_id: l.diff_id.as_ref().map(ToString::to_string),
            size: l.size,
            present: present.is_some(),
        });
        stored.push(present);
    }
    let manifest_digest = p.resolved.digest.to_string();
    // As the import decides it: the stored tree is the one it would build.
    let stored: Option<Vec<&str>> = stored.iter().map(Option::as_deref).collect();
    let up_to_date = match stored.and_then(|c| super::up_to_date::record(format, opts, &c)) {
        Some(record) => {
            up_to_date(repo, &p.name, &manifest_digest, &p.config_str, &record)?.is_some()
        }
        None => false,
    };
    Ok(CheckReport {
        imported: refs::resolve(repo, &crate::refname::image_ref(&p.name))?.is_some(),
        imported_manifest: crate::image::ImageInfo::load(repo, &p.name)
            .ok()
            .map(|i| i.manifest_digest),
        up_to_date,
        name: p.name,
        manifest_digest,
        layers,
    })
}

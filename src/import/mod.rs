//! The import job: source → manifest → per-layer commits (reused when present) → merge →
//! image commit + ref, all in one libostree transaction. [`prepare`] does the first step
//! alone, which is all an update check ([`check`]) needs.

mod check;
mod prepare;

pub use check::{CheckReport, LayerStatus, check};
pub use prepare::{Prepared, prepare, up_to_date};

use std::collections::HashMap;

use ostree::{Repo, gio};

use crate::error::{Error, Result};
use crate::image::{self, ImageMeta, refs};
use crate::layer::stream::{ExactGzipStatus, import_layer};
use crate::layer::{OnSpecial, Skipped};
use crate::merge::{LayerTree, merge_layers};
use crate::refname;
use crate::resolve::Resolved;
use crate::source::{Selector, SourceRef};
use crate::spec::{Platform, parse_rfc3339};

/// Options of [`import`].
#[derive(Clone, Debug)]
#[non_exhaustive]
pub struct ImportOptions {
    /// Local image name; default derived from the source (see [`default_name`]).
    pub name: Option<String>,
    /// Platform to pick from an index; default the host's.
    pub platform: Option<Platform>,
    /// What to do with device nodes and FIFOs.
    pub on_special: OnSpecial,
    /// Analyse gzip layers so that export can rebuild their exact compressed bytes (see
    /// [`crate::layer::stream::ExactGzipStatus`]). Default: on in builds with the `exact-gzip`
    /// feature, which is the only place it has an effect.
    pub exact_gzip: bool,
}

// Derivable only in builds without the exact-gzip feature.
#[allow(clippy::derivable_impls)]
impl Default for ImportOptions {
    fn default() -> Self {
        ImportOptions {
            name: None,
            platform: None,
            on_special: OnSpecial::default(),
            exact_gzip: cfg!(feature = "exact-gzip"),
        }
    }
}

impl ImportOptions {
    /// Options with every default.
    pub fn new() -> Self {
        Self::default()
    }
}

/// What an import did.
#[derive(Clone, Debug)]
#[non_exhaustive]
pub struct ImportReport {
    /// The local image name.
    pub name: String,
    /// The manifest digest.
    pub manifest_digest: String,
    /// The image commit checksum.
    pub commit: String,
    /// Layers read from their blobs.
    pub layers_imported: usize,
    /// Layers already in the repo (never read).
    pub layers_reused: usize,
    /// Entries OSTree cannot store that were left out.
    pub skipped: Vec<Skipped>,
    /// For each gzip layer read with [`ImportOptions::exact_gzip`]: its blob digest and
    /// whether export can rebuild its exact compressed bytes.
    pub exact_gzip: Vec<(String, ExactGzipStatus)>,
}

/// The name an image gets when the user gives none: the tag annotation when it is a full
/// reference (has `/` or `:`), else `BASENAME:TAG`, `BASENAME@DIGEST` or `BASENAME`.
pub fn default_name(source: &SourceRef, resolved: &Resolved) -> String {
    let base = source.base_name();
    match (resolved.ref_name.as_deref(), source.selector()) {
        (Some(r), _) if r.contains('/') || r.contains(':') => r.to_string(),
        (Some(tag), _) => format!("{base}:{tag}"),
        (None, Selector::Digest(d)) => format!("{base}@{d}"),
        (None, _) => base,
    }
}

/// Imports an image into `repo`.
///
/// Layers already present (by blob digest or diff_id) are not read. Everything happens in one
/// transaction: on error no ref changes and no object is left behind.
///
/// # Errors
/// Any [`Error`]; layer failures are [`Error::Layer`] naming image and layer.
pub fn import(repo: &Repo, source: &SourceRef, opts: &ImportOptions) -> Result<ImportReport> {
    let Prepared {
        image,
        mut src,
        resolved,
        config,
        config_str,
        manifest_str,
        layers,
        name,
    } = prepare(source, opts)?;
    let mut report = ImportReport {
        name: name.clone(),
        manifest_digest: resolved.digest.to_string(),
        commit: String::new(),
        layers_imported: 0,
        layers_reused: 0,
        skipped: Vec::new(),
        exact_gzip: Vec::new(),
    };

    // Same manifest under the same name already: nothing to read, nothing to write.
    if let Some(commit) = up_to_date(repo, &name, &report.manifest_digest, &config_str)? {
        report.commit = commit;
        report.layers_reused = layers.len();
        return Ok(report);
    }

    let txn = repo
        .auto_transaction(gio::Cancellable::NONE)
        .map_err(Error::ostree("starting a transaction"))?;
    let mut commits: HashMap<String, String> = HashMap::new();
    let mut trees = Vec::with_capacity(layers.len());
    for layer in &layers {
        let layer_err = |cause| Error::Layer {
            image: image.clone(),
            layer: layer.digest.to_string(),
            cause,
        };
        let commit = if let Some(c) = commits.get(layer.digest.as_str()) {
            report.layers_reused += 1;
            c.clone()
        } else if let Some(c) = refs::find_layer(repo, &layer.digest, &layer.diff_id)? {
            report.layers_reused += 1;
            c
        } else {
            let blob = src.open_blob(&layer.digest)?;
            let imported = import_layer(repo, blob, layer, opts.on_special, opts.exact_gzip)
                .map_err(layer_err)?;
            report.layers_imported += 1;
            report.skipped.extend(imported.skipped);
            if imported.exact_gzip != ExactGzipStatus::NotAttempted {
                report
                    .exact_gzip
                    .push((layer.digest.to_string(), imported.exact_gzip));
            }
            imported.commit
        };
        repo.transaction_set_ref(
            None,
            &refname::blob_ref(layer.digest.as_str()),
            Some(&commit),
        );
        repo.transaction_set_ref(
            None,
            &refname::diffid_ref(layer.diff_id.as_str()),
            Some(&commit),
        );
        commits.insert(layer.digest.to_string(), commit.clone());
        trees.push(LayerTree::load(repo, &commit).map_err(layer_err)?);
    }
    let merged = merge_layers(repo, &trees).map_err(|(i, cause)| Error::Layer {
        image: image.clone(),
        layer: layers[i].digest.to_string(),
        cause,
    })?;
    let meta = ImageMeta {
        name: &name,
        source: &image,
        manifest: &manifest_str,
        manifest_digest: &report.manifest_digest,
        config: &config_str,
        layers: layers.iter().map(|l| l.digest.to_string()).collect(),
        diff_ids: layers.iter().map(|l| l.diff_id.to_string()).collect(),
        timestamp: config
            .created
            .as_deref()
            .and_then(parse_rfc3339)
            .unwrap_or(0),
    };
    report.commit = image::write_image_commit(repo, &merged, &meta)?;
    repo.transaction_set_ref(None, &refname::image_ref(&name), Some(&report.commit));
    txn.commit(gio::Cancellable::NONE)
        .map_err(Error::ostree("committing the transaction"))?;
    crate::repo::refresh_summary(repo)?;
    Ok(report)
}

//! An import of what the name already is (same manifest and config): nothing is read and no
//! commit is written, but the import still answers for the image as a first one would (what
//! its stored layers left out, refused under `--strict`), records where it came from, and
//! finishes what an interrupted earlier run of it left undone: commits still marked partial,
//! the static delta asked for, the summary of a served repository.

use ostree::Repo;

use crate::error::{Error, Result};
use crate::image::{self, refs};
use crate::import::{ImportOptions, ImportReport};
use crate::layer::skipped;
use crate::layer::stream::LayerBlob;
use crate::progress::Event;

/// Finishes the import of `image` as `name`, already at `commit`, whose layers are `layers`.
///
/// # Errors
/// A layer's skipped entry under `--strict` (before anything is written); libostree fails.
pub(super) fn finish(
    repo: &Repo,
    name: &str,
    image: &str,
    commit: &str,
    layers: &[LayerBlob],
    opts: &ImportOptions,
    mut report: ImportReport,
) -> Result<ImportReport> {
    // The same events as an import that reads nothing: every layer is reused.
    opts.progress.emit(Event::Resolved {
        manifest: report.manifest_digest.clone(),
        layers: layers.len(),
        to_read: 0,
        bytes: 0,
    });
    // What the stored layers left out counts as if they were read: checked first, so a
    // refusal (--strict) changes nothing.
    let mut stored = Vec::new();
    for (index, l) in layers.iter().enumerate() {
        opts.progress.emit(Event::LayerReused {
            index,
            digest: l.digest.to_string(),
        });
        if let Some(c) = refs::find_layer(repo, &l.digest, l.diff_id.as_ref())? {
            let left_out = skipped::reused(repo, &c, l.digest.as_str(), opts.on_special);
            report
                .skipped
                .extend(left_out.map_err(|cause| Error::Layer {
                    image: image.to_string(),
                    layer: l.digest.to_string(),
                    cause,
                })?);
            stored.push(c);
        }
    }
    // Only where it came from may be new: it lives beside the commit, not in it.
    let holder = image::ImageInfo::load_commit(repo, name, commit)?
        .record
        .unwrap_or_else(|| commit.to_string());
    image::commit::record_source(repo, &holder, name, image)?;
    // A kill while an earlier import committed may have left its commits marked.
    crate::repo::partial::unmark_if_whole(repo, commit)?;
    for c in &stored {
        crate::repo::partial::unmark_if_whole(repo, c)?;
    }
    // A kill after the image ref moved, before the delta or the summary were written.
    if opts.delta_from_previous {
        report.delta = crate::serve::delta::from_previous_if_missing(repo, name)?;
    }
    report.summary = crate::serve::summary::update(repo)?;
    report.commit = commit.to_string();
    report.collection_mismatch = crate::repo::collection::mismatch(repo, commit)?;
    report.layers_reused = layers.len();
    opts.progress.emit(Event::Done {
        commit: report.commit.clone(),
    });
    Ok(report)
}

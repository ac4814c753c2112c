//! The layers an import lacks, read from their blobs into layer commits, several at a time.
//!
//! An image is a list of independent layers until the merge: each becomes its own layer
//! commit, so they can be read concurrently (an OS image has dozens). The source opens the
//! blobs one after another, in layer order, on the calling thread (a registry source hands
//! them over as its downloads complete); up to `jobs` worker threads each run one layer's
//! pipeline (decompress → tar entries → objects → layer commit), all in the caller's
//! transaction. Memory grows with `jobs`, never with layer size.
//!
//! The first failure stops the hand-out of further layers; those already running finish, and
//! the error of the earliest failed layer (in layer order) is returned, so the error a user
//! sees does not depend on thread timing.

use std::collections::BTreeMap;
use std::sync::Mutex;
use std::sync::mpsc::sync_channel;

use ostree::Repo;

use super::ImportOptions;
use crate::blob::BlobReader;
use crate::digest::Digest;
use crate::error::{Error, LayerError, Result};
use crate::image::refs;
use crate::layer::Skipped;
use crate::layer::stream::{ImportedLayer, LayerBlob};
use crate::layer::treated::{ReadOptions, import_treated};
use crate::merge::LayerTree;
use crate::progress::Event;
use crate::select;
use crate::source::Source;

/// The layer commit already in the repository for `layer`, if it can serve: one built under
/// other layer rules cannot ([`crate::layer::rules`]), nor one holding a tree where a file is
/// wanted (the blob is read again, and its artifact commit then takes the blob ref: it gives
/// back the same tree as well).
pub(super) fn present_layer(repo: &Repo, layer: &LayerBlob) -> Result<Option<String>> {
    let Some(c) = stored_layer(repo, &layer.digest, layer.diff_id.as_ref())? else {
        return Ok(None);
    };
    if let select::Treatment::File(_) = layer.treatment {
        let is_file = crate::layer::file::is_file_layer(repo, &c)
            .map_err(Error::ostree(format!("loading layer {c}")))?;
        return Ok(is_file.then_some(c));
    }
    Ok(Some(c))
}

/// The layer commit stored for blob `digest` (or, failing that, for its `diff_id`) if it was
/// built under the current layer rules ([`crate::layer::rules`]): one built under others is
/// read again.
///
/// # Errors
/// libostree fails.
fn stored_layer(repo: &Repo, digest: &Digest, diff_id: Option<&Digest>) -> Result<Option<String>> {
    let Some(c) = refs::find_layer(repo, digest, diff_id)? else {
        return Ok(None);
    };
    let current = crate::layer::rules::current(repo, &c)
        .map_err(Error::ostree(format!("loading layer {c}")))?;
    Ok(current.then_some(c))
}

/// What a layer stored before this import must still pass, as reading it would have made it:
/// the config's diff_id is the one stored with the blob (else the image is not what its
/// layers are, and export would write a config contradicting them), and its skipped entries
/// are reported again, or refused under `--strict` ([`crate::layer::skipped::reused`]).
///
/// # Errors
/// [`LayerError::DiffIdMismatch`]; an entry refused under `--strict`.
pub(super) fn check_stored(
    repo: &Repo,
    layer: &LayerBlob,
    tree: &LayerTree,
    opts: &ImportOptions,
) -> std::result::Result<Vec<Skipped>, LayerError> {
    if let (Some(expected), select::Treatment::Tar) = (&layer.diff_id, &layer.treatment) {
        if *expected.as_str() != tree.diff_id {
            return Err(LayerError::DiffIdMismatch {
                expected: expected.to_string(),
                found: format!("{} (the stored layer of this blob)", tree.diff_id),
            });
        }
    }
    crate::layer::skipped::reused(repo, &tree.commit, layer.digest.as_str(), opts.on_special)
}

/// Reads one layer's blob into its layer commit (on a worker of [`read_layers`]).
pub(super) fn read_layer(
    repo: &Repo,
    image: &str,
    index: usize,
    layer: &LayerBlob,
    blob: BlobReader,
    opts: &ImportOptions,
    read_opts: ReadOptions,
) -> Result<ImportedLayer> {
    opts.progress.emit(Event::LayerStart {
        index,
        digest: layer.digest.to_string(),
        size: layer.size,
    });
    let blob: BlobReader = Box::new(opts.progress.counting(index, blob));
    let read_opts = keeping_what_was_kept(repo, layer, read_opts);
    let imported = import_treated(repo, blob, layer, read_opts).map_err(|cause| Error::Layer {
        image: image.to_string(),
        layer: layer.digest.to_string(),
        cause,
    })?;
    opts.progress.emit(Event::LayerDone {
        index,
        digest: layer.digest.to_string(),
        commit: imported.commit.clone(),
    });
    Ok(imported)
}

/// The options for reading `layer` again where its blob ref names a commit this import does
/// not reuse (stored under other layer rules): what that commit kept for an exact export is
/// kept again — the blob of an artifact, the exact-gzip records — whatever this import asks,
/// so that no image already stored loses its blob digests on export.
fn keeping_what_was_kept(repo: &Repo, layer: &LayerBlob, mut opts: ReadOptions) -> ReadOptions {
    let stored = refs::resolve(repo, &crate::refname::blob_ref(layer.digest.as_str()));
    let Ok(Some(commit)) = stored else {
        return opts;
    };
    let Ok(v) = repo.load_variant(ostree::ObjectType::Commit, &commit) else {
        return opts;
    };
    let dict = ostree::glib::VariantDict::new(Some(&v.child_value(0)));
    opts.keep_blob |= dict.contains(crate::meta::LAYER_TREE_COMMIT);
    opts.exact_gzip |= dict.contains(crate::meta::LAYER_EXACT_GZIP);
    opts
}

/// The number of layers read at once when the user did not say: one per core.
pub fn default_jobs() -> usize {
    std::thread::available_parallelism().map_or(1, |n| n.get())
}

/// Reads `layers` (each with its index in the image) with `read`, up to `jobs` at a time.
/// Returns the imported layers by index.
///
/// # Errors
/// Opening a blob fails, or `read` fails for a layer: the error of the earliest such layer.
pub(super) fn read_layers<F>(
    repo: &Repo,
    src: &mut dyn Source,
    layers: &[(usize, &LayerBlob)],
    jobs: usize,
    read: F,
) -> Result<BTreeMap<usize, ImportedLayer>>
where
    F: Fn(&Repo, usize, &LayerBlob, BlobReader) -> Result<ImportedLayer> + Sync,
{
    let jobs = jobs.clamp(1, layers.len().max(1));
    let done: Mutex<BTreeMap<usize, Result<ImportedLayer>>> = Mutex::default();
    let failed = || done.lock().map_or(true, |d| d.values().any(|r| r.is_err()));
    // A worker takes the next opened blob; the channel holds none in reserve, so at most one
    // opened blob waits for a free worker.
    let (tx, rx) = sync_channel::<(usize, &LayerBlob, BlobReader)>(0);
    let rx = Mutex::new(rx);
    let open_err = std::thread::scope(|s| {
        for _ in 0..jobs {
            let repo = repo.clone();
            let (rx, done, read) = (&rx, &done, &read);
            s.spawn(move || {
                loop {
                    let next = rx
                        .lock()
                        .map_err(|_| ())
                        .and_then(|r| r.recv().map_err(|_| ()));
                    let Ok((index, layer, blob)) = next else {
                        break;
                    };
                    let result = read(&repo, index, layer, blob);
                    if let Ok(mut d) = done.lock() {
                        d.insert(index, result);
                    }
                }
            });
        }
        let mut open_err: Option<Error> = None;
        for &(index, layer) in layers {
            if failed() {
                break;
            }
            match src.open_blob(&layer.digest) {
                Ok(blob) => {
                    if tx.send((index, layer, blob)).is_err() {
                        break;
                    }
                }
                Err(e) => {
                    open_err = Some(e);
                    break;
                }
            }
        }
        drop(tx);
        open_err
    });
    let done = done.into_inner().unwrap_or_default();
    // The earliest failure in layer order: a layer that failed to read, or one whose blob
    // could not be opened (every layer before it was handed out).
    let first_failed = done.iter().find(|(_, r)| r.is_err()).map(|(i, _)| *i);
    let mut out = BTreeMap::new();
    let mut first_err = None;
    for (index, r) in done {
        match r {
            Ok(l) => {
                out.insert(index, l);
            }
            Err(e) if Some(index) == first_failed => first_err = Some((index, e)),
            Err(_) => {}
        }
    }
    match (first_err, open_err) {
        // every read failure is of a layer handed out before the one that failed to open
        (Some((_, e)), _) | (None, Some(e)) => Err(e),
        (None, None) if out.len() == layers.len() => Ok(out),
        (None, None) => Err(Error::Io {
            context: "reading layers".into(),
            cause: std::io::Error::other("a layer worker stopped early"),
        }),
    }
}

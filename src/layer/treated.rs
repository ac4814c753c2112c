//! A layer read as its [`Treatment`] says — a tar, a file, or whichever its bytes are
//! ([`crate::layer::sniff`]) — and the tree it gives in an image.
//!
//! In an artifact (its config is no container image config), a compressed tar that is
//! extracted keeps its blob too: an artifact layer commit holds the blob byte for byte (so
//! `export` gives back the same blob, digest and signatures still valid) and names, in
//! [`meta::LAYER_TREE_COMMIT`], the layer commit of the tree read from that blob. The blob ref
//! names the artifact commit, the diff_id ref the tree's. A container image's layers are read
//! as before: tree only, the compressed bytes rebuilt on export.
//!
//! [`meta::LAYER_TREE_COMMIT`]: crate::meta::LAYER_TREE_COMMIT

use ostree::Repo;

use crate::blob::BlobReader;
use crate::decompress::Compression;
use crate::error::LayerError;
use crate::layer::OnSpecial;
use crate::layer::file::{
    commit_file_layer, file_layer_info, import_file_layer, store_blob, with_object,
};
use crate::layer::sniff::{Head, sniff};
use crate::layer::stream::{ExactGzipStatus, ImportedLayer, LayerBlob, import_layer};
use crate::select::Treatment;

/// How [`import_treated`] reads.
#[derive(Clone, Copy, Debug)]
pub struct ReadOptions {
    /// What to do with device nodes and FIFOs.
    pub on_special: OnSpecial,
    /// Analyse gzip layers for an exact export (tree-only layers).
    pub exact_gzip: bool,
    /// Keep the blob of an extracted compressed tar (artifacts).
    pub keep_blob: bool,
}

fn ostree_err(op: &'static str) -> impl FnOnce(ostree::glib::Error) -> LayerError {
    move |cause| LayerError::Ostree {
        path: String::new(),
        op,
        cause,
    }
}

/// Whether a blob whose start is `head` is read as a tar under `treatment`.
///
/// # Errors
/// [`LayerError::NotATar`] when it must be a tar and 512 bytes say it is none.
fn reads_as_tar(treatment: &Treatment, head: Head, layer: &LayerBlob) -> Result<bool, LayerError> {
    match (treatment, head) {
        (Treatment::File(_), _) => Ok(false),
        (Treatment::Tar, Head::NotTar) => Err(LayerError::NotATar {
            media_type: layer.media_type.clone(),
        }),
        // Short or undecodable: the tar reader says where it breaks.
        (Treatment::Tar, _) => Ok(true),
        (Treatment::TarOrFile(_), h) => Ok(h.is_tar()),
    }
}

/// Reads `blob` as `layer.treatment` says. The commit returned is the one the blob ref names
/// (an artifact commit when the blob is kept).
///
/// # Errors
/// [`LayerError::NotATar`] for a blob that must be a tar and is none (its bytes never
/// quoted); whatever reading the tar or storing the file fails with.
pub fn import_treated(
    repo: &Repo,
    blob: BlobReader,
    layer: &LayerBlob,
    opts: ReadOptions,
) -> Result<ImportedLayer, LayerError> {
    if let Treatment::File(_) = layer.treatment {
        return import_file_layer(repo, blob, layer);
    }
    let (head, compression, blob) = sniff(blob);
    if !reads_as_tar(&layer.treatment, head, layer)? {
        return import_file_layer(repo, blob, layer);
    }
    if !opts.keep_blob || compression == Compression::None {
        return import_layer(repo, blob, layer, opts.on_special, opts.exact_gzip);
    }
    let csum = store_blob(repo, blob, layer)?;
    let tree = with_object(repo, &csum, |repo, b| {
        import_layer(repo, b, layer, opts.on_special, false)
    })
    .map_err(ostree_err("reading the stored blob"))??;
    let commit = commit_file_layer(repo, &csum, layer, Some(&tree.commit))?;
    Ok(ImportedLayer {
        commit,
        diff_id: tree.diff_id,
        skipped: tree.skipped,
        exact_gzip: ExactGzipStatus::NotAttempted,
    })
}

/// The tree a layer commit gives in an image ([`tree_of`]); the merge loads it
/// ([`crate::merge::LayerTree::given`]).
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum GivenTree {
    /// The tree of this tar layer commit.
    Tar(String),
    /// One file at `path`: the blob this artifact layer commit holds.
    File {
        /// The artifact layer commit.
        commit: String,
        /// Where the file goes (relative, normalised).
        path: String,
    },
}

/// The tree layer commit `commit` gives for a layer treated as `layer.treatment`: a file at
/// its path, or a tar's tree (an artifact commit keeping a tar's blob gives the tree it names,
/// read again from the blob if that commit is gone).
///
/// # Errors
/// The commit holds a tree where a file is wanted ([`LayerError::KindConflict`]: the caller
/// reads the blob instead), a blob that must be a tar is none, or libostree fails.
pub fn tree_of(
    repo: &Repo,
    commit: &str,
    layer: &LayerBlob,
    on_special: OnSpecial,
) -> Result<GivenTree, LayerError> {
    let file = |p: &String| GivenTree::File {
        commit: commit.to_string(),
        path: p.clone(),
    };
    let (is_file, tree) =
        file_layer_info(repo, commit).map_err(ostree_err("loading layer commit"))?;
    match (&layer.treatment, is_file) {
        (Treatment::File(p), true) => Ok(file(p)),
        (Treatment::File(_), false) => Err(LayerError::KindConflict {
            stored: "a tree",
            wanted: "a file",
            hint: "its blob is read again",
        }),
        (Treatment::Tar | Treatment::TarOrFile(_), false) => Ok(GivenTree::Tar(commit.into())),
        (_, true) => {
            let stored = tree.filter(|t| repo.load_variant(ostree::ObjectType::Commit, t).is_ok());
            if let Some(t) = stored {
                return Ok(GivenTree::Tar(t));
            }
            // Stored as a file (by a --copy, or its tree pruned): read the tree from the blob.
            let csum = crate::layer::file::blob_object(repo, commit)
                .map_err(ostree_err("reading artifact layer"))?;
            let read = with_object(
                repo,
                &csum,
                |repo, b| -> Result<Option<String>, LayerError> {
                    let (head, _, b) = sniff(b);
                    if !reads_as_tar(&layer.treatment, head, layer)? {
                        return Ok(None);
                    }
                    import_layer(repo, b, layer, on_special, false).map(|l| Some(l.commit))
                },
            )
            .map_err(ostree_err("reading the stored blob"))??;
            match (read, &layer.treatment) {
                (Some(t), _) => Ok(GivenTree::Tar(t)),
                (None, Treatment::TarOrFile(p)) => Ok(file(p)),
                (None, _) => Err(LayerError::NotATar {
                    media_type: layer.media_type.clone(),
                }),
            }
        }
    }
}

//! One layer commit → its exact tar stream → a compressed blob, with both digests computed on
//! the way.

use std::io::{self, Write};

use ostree::{ObjectType, Repo, glib};

use crate::digest::{Digest, Hasher};
use crate::error::{Error, Result};
use crate::export::compress::{LayerCompression, compress_into};
use crate::layer::tarsplit;
use crate::meta;

/// A writer that hashes what passes through.
struct HashingWriter<W> {
    inner: W,
    hasher: Hasher,
    count: u64,
}

impl<W: Write> Write for HashingWriter<W> {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        let n = self.inner.write(buf)?;
        self.hasher.update(&buf[..n]);
        self.count += n as u64;
        Ok(n)
    }
    fn flush(&mut self) -> io::Result<()> {
        self.inner.flush()
    }
}

/// What writing one layer blob produced.
#[derive(Clone, Debug)]
pub struct LayerBlobOut {
    /// Digest of the uncompressed tar.
    pub diff_id: Digest,
    /// Digest of the blob as written.
    pub digest: Digest,
    /// Size of the blob as written.
    pub size: u64,
}

/// Whether a layer commit is an artifact layer ([`crate::layer::file`]): its blob is stored
/// whole, not as a tar.
///
/// # Errors
/// The commit is missing.
pub fn is_artifact(repo: &Repo, commit: &str) -> Result<bool> {
    let v = repo
        .load_variant(ObjectType::Commit, commit)
        .map_err(Error::ostree(format!("loading layer {commit}")))?;
    let dict = glib::VariantDict::new(Some(&v.child_value(0)));
    Ok(dict
        .lookup::<String>(meta::LAYER_KIND)
        .ok()
        .flatten()
        .as_deref()
        == Some(crate::layer::file::KIND))
}

/// Writes an artifact layer's blob, unchanged, to `out`.
///
/// # Errors
/// The blob object is missing or unreadable, or writing fails.
pub fn copy_artifact(repo: &Repo, commit: &str, out: &mut dyn Write) -> Result<()> {
    use ostree::gio::prelude::*;
    let missing = || Error::NotFound(format!("blob of artifact layer {commit}"));
    let (root, _) = repo
        .read_commit(commit, ostree::gio::Cancellable::NONE)
        .map_err(Error::ostree(format!("reading layer {commit}")))?;
    let file = root.child(crate::layer::file::BLOB);
    let file = file
        .downcast_ref::<ostree::RepoFile>()
        .ok_or_else(missing)?;
    file.ensure_resolved()
        .map_err(Error::ostree(format!("reading layer {commit}")))?;
    let (input, _, _) = repo
        .load_file(file.checksum().as_str(), ostree::gio::Cancellable::NONE)
        .map_err(Error::ostree(format!("reading layer {commit}")))?;
    io::copy(&mut input.ok_or_else(missing)?.into_read(), out)
        .map(drop)
        .map_err(|e| Error::Io {
            context: format!("copying artifact layer {commit}"),
            cause: e,
        })
}

/// The tar-split records of a layer commit.
///
/// # Errors
/// The commit is missing or has no tar-split (imported by an ocitree that did not record it).
pub fn tar_split(repo: &Repo, commit: &str) -> Result<Vec<u8>> {
    let v = repo
        .load_variant(ObjectType::Commit, commit)
        .map_err(Error::ostree(format!("loading layer {commit}")))?;
    let dict = glib::VariantDict::new(Some(&v.child_value(0)));
    let version = dict
        .lookup::<u32>(meta::LAYER_TAR_SPLIT_VERSION)
        .ok()
        .flatten();
    let records = dict.lookup_value(meta::LAYER_TAR_SPLIT, Some(glib::VariantTy::BYTE_STRING));
    match (version, records) {
        (Some(tarsplit::VERSION), Some(r)) => Ok(r
            .fixed_array::<u8>()
            .map(<[u8]>::to_vec)
            .unwrap_or_default()),
        _ => Err(Error::InvalidImage {
            image: format!("layer commit {commit}"),
            reason: "no tar-split record (re-import the image to make it exportable)".into(),
        }),
    }
}

/// Compresses the tar that `tar` writes as `compression` says ([`compress_into`]:
/// deterministic, on every core) into `out`, hashing the tar with `diff_id` and the blob with
/// sha256 on the way.
///
/// # Errors
/// `tar`'s errors; compression or writing failures as [`Error::Io`] naming `what`.
pub fn write_blob(
    compression: &LayerCompression,
    diff_id: Hasher,
    out: &mut (dyn Write + Send),
    what: &str,
    tar: &mut dyn FnMut(&mut dyn Write) -> Result<()>,
) -> Result<LayerBlobOut> {
    let mut blob = HashingWriter {
        inner: out,
        hasher: Hasher::sha256(),
        count: 0,
    };
    // The tar writer's own error is kept whole; the compressor only sees that it stopped.
    let mut failure = None;
    let written = compress_into(&mut blob, compression, |z| {
        let mut plain = HashingWriter {
            inner: z,
            hasher: diff_id,
            count: 0,
        };
        if let Err(e) = tar(&mut plain) {
            failure = Some(e);
            return Err(io::Error::other("the layer tar could not be written"));
        }
        Ok(plain.hasher.finish())
    });
    if let Some(e) = failure {
        return Err(e);
    }
    let diff_id = written.map_err(|e| Error::Io {
        context: format!("writing {what}"),
        cause: e,
    })?;
    Ok(LayerBlobOut {
        diff_id,
        digest: blob.hasher.finish(),
        size: blob.count,
    })
}

/// Writes the uncompressed tar of layer commit `commit` (recorded as `diff_id`) to `out`.
///
/// # Errors
/// The tar-split is missing or corrupt, an object is missing, or writing fails.
pub fn rebuild_tar(repo: &Repo, commit: &str, diff_id: &Digest, out: &mut dyn Write) -> Result<()> {
    let records = tar_split(repo, commit)?;
    tarsplit::rebuild(repo, &records, out)
        .map(drop)
        .map_err(|e| Error::Io {
            context: format!("rebuilding layer {diff_id}"),
            cause: e,
        })
}

/// Checks that a rebuilt layer tar hashed to the diff_id it was recorded with.
///
/// # Errors
/// [`Error::InvalidImage`] when it did not.
pub fn check_diff_id(written: &LayerBlobOut, diff_id: &Digest) -> Result<()> {
    if &written.diff_id != diff_id {
        return Err(Error::InvalidImage {
            image: format!("layer {diff_id}"),
            reason: format!("rebuilt tar hashes to {}, not its diff_id", written.diff_id),
        });
    }
    Ok(())
}

/// Rebuilds the tar of layer commit `commit`, compresses it with `compression` into `out`,
/// and checks the tar against `diff_id`.
///
/// # Errors
/// The tar-split is missing or corrupt, an object is missing, the rebuilt tar does not match
/// `diff_id`, or writing fails.
pub fn write_layer_blob(
    repo: &Repo,
    commit: &str,
    diff_id: &Digest,
    compression: &LayerCompression,
    out: &mut (dyn Write + Send),
) -> Result<LayerBlobOut> {
    let what = format!("layer {diff_id}");
    let written = write_blob(compression, diff_id.hasher()?, out, &what, &mut |tar| {
        rebuild_tar(repo, commit, diff_id, tar)
    })?;
    check_diff_id(&written, diff_id)?;
    Ok(written)
}

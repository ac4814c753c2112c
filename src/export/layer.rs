//! One layer commit → its exact tar stream → a compressed blob, with both digests computed on
//! the way.

use std::io::{self, Write};

use ostree::{ObjectType, Repo, glib};

use crate::blob::HashingWriter;
use crate::decompress::Compression;
use crate::digest::{Digest, Hasher};
use crate::error::{Error, Result};
use crate::export::compress::{LayerCompression, compress_into};
use crate::layer::tarsplit;
use crate::meta;

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
    crate::layer::file::is_file_layer(repo, commit)
        .map_err(Error::ostree(format!("loading layer {commit}")))
}

/// Writes an artifact layer's blob, unchanged, to `out`.
///
/// # Errors
/// The blob object is missing or unreadable, or writing fails.
pub fn copy_artifact(repo: &Repo, commit: &str, out: &mut dyn Write) -> Result<()> {
    use ostree::gio::prelude::*;
    let reading = || Error::ostree(format!("reading layer {commit}"));
    let blob = crate::layer::file::blob_object(repo, commit).map_err(reading())?;
    let (input, _, _) = repo
        .load_file(&blob, ostree::gio::Cancellable::NONE)
        .map_err(reading())?;
    let input = input.ok_or_else(|| Error::NotFound(format!("blob of artifact layer {commit}")))?;
    io::copy(&mut input.into_read(), out)
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

/// Whether `export` (without `--compression`) gives back blob `digest` (of media type
/// `media_type`) of layer commit `commit` byte for byte, or why not: plain tars and artifact
/// blobs always, gzip layers when they carry usable exact-gzip records, zstd layers never.
///
/// # Errors
/// The commit is missing.
pub fn export_keeps_blob(
    repo: &Repo,
    commit: &str,
    digest: &Digest,
    media_type: &str,
) -> Result<std::result::Result<(), String>> {
    if is_artifact(repo, commit)? {
        return Ok(Ok(()));
    }
    Ok(match Compression::from_media_type(media_type) {
        Compression::Gzip => exact_gzip_records(repo, commit, digest)?.map(drop),
        Compression::Zstd => Err("zstd layers are re-compressed (no exact zstd rebuild)".into()),
        _ => Ok(()),
    })
}

/// The exact-gzip records of layer commit `commit` that rebuild blob `digest` (feature
/// `exact-gzip`), or why this build cannot rebuild that blob bit for bit from what the commit
/// holds.
///
/// # Errors
/// The commit is missing; inside: the reason, for the export report.
pub fn exact_gzip_records(
    repo: &Repo,
    commit: &str,
    digest: &Digest,
) -> Result<std::result::Result<Vec<u8>, String>> {
    let v = repo
        .load_variant(ObjectType::Commit, commit)
        .map_err(Error::ostree(format!("loading layer {commit}")))?;
    let dict = glib::VariantDict::new(Some(&v.child_value(0)));
    let records = dict
        .lookup_value(meta::LAYER_EXACT_GZIP, Some(glib::VariantTy::BYTE_STRING))
        .map(|r| {
            r.fixed_array::<u8>()
                .map(<[u8]>::to_vec)
                .unwrap_or_default()
        });
    let format = dict
        .lookup::<(u32, String)>(meta::LAYER_EXACT_GZIP_FORMAT)
        .ok()
        .flatten();
    let (Some(records), Some((version, preflate))) = (records, format) else {
        let why = if cfg!(feature = "exact-gzip") {
            "no exact-gzip data (imported without it, or its gzip stream cannot be rebuilt)"
        } else {
            "no exact-gzip data (this ocitree is built without the exact-gzip feature, so its \
             imports keep none)"
        };
        return Ok(Err(why.into()));
    };
    let from = dict.lookup::<String>(meta::LAYER_DIGEST).ok().flatten();
    if from.as_deref() != Some(digest.as_str()) {
        return Ok(Err(format!(
            "the layer was imported from another blob ({})",
            from.as_deref().unwrap_or("unknown")
        )));
    }
    Ok(match exact_gzip_supported(version, &preflate) {
        Some(why) => Err(why),
        None => Ok(records),
    })
}

#[cfg(feature = "exact-gzip")]
fn exact_gzip_supported(version: u32, preflate: &str) -> Option<String> {
    use crate::layer::exact_gzip::{PREFLATE_VERSION, VERSION};
    (version != VERSION || preflate != PREFLATE_VERSION).then(|| {
        format!(
            "exact-gzip data format {version} of preflate-rs {preflate}; this build reads \
             format {VERSION} of preflate-rs {PREFLATE_VERSION}"
        )
    })
}

#[cfg(not(feature = "exact-gzip"))]
fn exact_gzip_supported(_version: u32, _preflate: &str) -> Option<String> {
    Some("this build has no exact-gzip support (cargo feature exact-gzip)".into())
}

/// Rebuilds the original gzip blob of a layer from its exact-gzip `records` and the tar that
/// `tar` writes into `out`, hashing the tar with `diff_id` and the blob with sha256 on the way
/// (feature `exact-gzip`; without it, an error).
///
/// # Errors
/// `tar`'s errors; the records do not fit the tar, or writing fails, as [`Error::Io`] naming
/// `what`.
#[cfg(feature = "exact-gzip")]
pub fn write_exact_gzip_blob(
    records: &[u8],
    diff_id: Hasher,
    out: &mut (dyn Write + Send),
    what: &str,
    tar: &mut dyn FnMut(&mut dyn Write) -> Result<()>,
) -> Result<LayerBlobOut> {
    let mut blob = HashingWriter::new(out, Hasher::sha256());
    let exact = crate::layer::exact_gzip::ExactGzipWriter::new(records, &mut blob);
    let mut plain = HashingWriter::new(exact, diff_id);
    tar(&mut plain)?;
    let HashingWriter { inner, hasher, .. } = plain;
    inner.finish().map_err(|e| Error::Io {
        context: format!("writing {what}"),
        cause: e,
    })?;
    Ok(LayerBlobOut {
        diff_id: hasher.finish(),
        digest: blob.hasher.finish(),
        size: blob.count,
    })
}

/// Without the `exact-gzip` feature: always an error (callers check
/// [`exact_gzip_records`] first, which says this build cannot).
///
/// # Errors
/// Always.
#[cfg(not(feature = "exact-gzip"))]
pub fn write_exact_gzip_blob(
    _records: &[u8],
    _diff_id: Hasher,
    _out: &mut (dyn Write + Send),
    what: &str,
    _tar: &mut dyn FnMut(&mut dyn Write) -> Result<()>,
) -> Result<LayerBlobOut> {
    Err(Error::Io {
        context: format!("writing {what}"),
        cause: io::Error::other("this build has no exact-gzip support"),
    })
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
    let mut blob = HashingWriter::new(out, Hasher::sha256());
    // The tar writer's own error is kept whole; the compressor only sees that it stopped.
    let mut failure = None;
    let written = compress_into(&mut blob, compression, |z| {
        let mut plain = HashingWriter::new(z, diff_id);
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

//! One layer commit → its exact tar stream → a compressed blob, with both digests computed on
//! the way.

use std::io::{self, Write};

use ostree::{ObjectType, Repo, glib};

use crate::decompress::Compression;
use crate::blob::HashingWriter;
use crate::digest::{Digest, Hasher};
use crate::error::{Error, Result};
use crate::layer::tarsplit;
use crate::meta;

/// The compressor in front of the blob file.
enum Encoder<W: Write> {
    Gzip(flate2::write::GzEncoder<W>),
    Zstd(zstd::stream::Encoder<'static, W>),
    Plain(W),
}

impl<W: Write> Write for Encoder<W> {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        match self {
            Encoder::Gzip(e) => e.write(buf),
            Encoder::Zstd(e) => e.write(buf),
            Encoder::Plain(w) => w.write(buf),
        }
    }
    fn flush(&mut self) -> io::Result<()> {
        match self {
            Encoder::Gzip(e) => e.flush(),
            Encoder::Zstd(e) => e.flush(),
            Encoder::Plain(w) => w.flush(),
        }
    }
}

impl<W: Write> Encoder<W> {
    /// Ends the compressed stream, reporting errors a drop would swallow.
    fn finish(self) -> io::Result<()> {
        match self {
            Encoder::Gzip(e) => e.finish().map(drop),
            Encoder::Zstd(e) => e.finish().map(drop),
            Encoder::Plain(mut w) => w.flush(),
        }
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
    compression: Compression,
    out: &mut dyn Write,
) -> Result<LayerBlobOut> {
    let records = tar_split(repo, commit)?;
    let io_err = |e: io::Error| Error::Io {
        context: format!("rebuilding layer {diff_id}"),
        cause: e,
    };
    let mut blob = HashingWriter {
        inner: out,
        hasher: Hasher::sha256(),
        count: 0,
    };
    let found = {
        let encoder = match compression {
            Compression::Gzip => Encoder::Gzip(
                flate2::GzBuilder::new()
                    .mtime(0)
                    .write(&mut blob, flate2::Compression::default()),
            ),
            Compression::Zstd => {
                Encoder::Zstd(zstd::stream::Encoder::new(&mut blob, 3).map_err(io_err)?)
            }
            _ => Encoder::Plain(&mut blob),
        };
        let mut tar = HashingWriter {
            inner: encoder,
            hasher: diff_id.hasher()?,
            count: 0,
        };
        tarsplit::rebuild(repo, &records, &mut tar).map_err(io_err)?;
        let HashingWriter {
            inner: encoder,
            hasher,
            ..
        } = tar;
        encoder.finish().map_err(io_err)?;
        hasher.finish()
    };
    if &found != diff_id {
        return Err(Error::InvalidImage {
            image: format!("layer {diff_id}"),
            reason: format!("rebuilt tar hashes to {found}, not its diff_id"),
        });
    }
    Ok(LayerBlobOut {
        diff_id: found,
        digest: blob.hasher.finish(),
        size: blob.count,
    })
}

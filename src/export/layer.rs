//! One layer commit → its exact tar stream → a compressed blob, with both digests computed on
//! the way.

use std::io::{self, Write};

use ostree::{ObjectType, Repo, glib};

use crate::blob::HashingWriter;
use crate::decompress::Compression;
use crate::digest::{Digest, Hasher};
use crate::error::{Error, Result};
use crate::layer::tarsplit;
use crate::meta;

/// The compressor in front of the blob file.
enum Encoder<'r, W: Write> {
    Gzip(flate2::write::GzEncoder<W>),
    Zstd(zstd::stream::Encoder<'static, W>),
    #[cfg(feature = "exact-gzip")]
    Exact(crate::layer::exact_gzip::ExactGzipWriter<'r, W>),
    Plain(W, std::marker::PhantomData<&'r ()>),
}

impl<W: Write> Write for Encoder<'_, W> {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        match self {
            Encoder::Gzip(e) => e.write(buf),
            Encoder::Zstd(e) => e.write(buf),
            #[cfg(feature = "exact-gzip")]
            Encoder::Exact(e) => e.write(buf),
            Encoder::Plain(w, _) => w.write(buf),
        }
    }
    fn flush(&mut self) -> io::Result<()> {
        match self {
            Encoder::Gzip(e) => e.flush(),
            Encoder::Zstd(e) => e.flush(),
            #[cfg(feature = "exact-gzip")]
            Encoder::Exact(e) => e.flush(),
            Encoder::Plain(w, _) => w.flush(),
        }
    }
}

impl<W: Write> Encoder<'_, W> {
    /// Ends the compressed stream, reporting errors a drop would swallow.
    fn finish(self) -> io::Result<()> {
        match self {
            Encoder::Gzip(e) => e.finish().map(drop),
            Encoder::Zstd(e) => e.finish().map(drop),
            #[cfg(feature = "exact-gzip")]
            Encoder::Exact(e) => e.finish().map(drop),
            Encoder::Plain(mut w, _) => w.flush(),
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

/// What export reads from a layer commit's metadata.
#[derive(Clone, Debug)]
pub struct LayerRecords {
    /// Tar-split records ([`crate::layer::tarsplit`]).
    pub tar_split: Vec<u8>,
    /// The blob digest the layer was imported from.
    pub digest: Option<String>,
    /// Exact-gzip records of that blob with their format (record version, preflate-rs
    /// version), if import recorded them ([`meta::LAYER_EXACT_GZIP`]).
    pub exact_gzip: Option<(Vec<u8>, (u32, String))>,
}

impl LayerRecords {
    /// Reads the records of layer commit `commit`.
    ///
    /// # Errors
    /// The commit is missing or has no tar-split (imported by an ocitree that did not record
    /// it).
    pub fn load(repo: &Repo, commit: &str) -> Result<LayerRecords> {
        let v = repo
            .load_variant(ObjectType::Commit, commit)
            .map_err(Error::ostree(format!("loading layer {commit}")))?;
        let dict = glib::VariantDict::new(Some(&v.child_value(0)));
        let bytes = |key| {
            dict.lookup_value(key, Some(glib::VariantTy::BYTE_STRING))
                .map(|r| {
                    r.fixed_array::<u8>()
                        .map(<[u8]>::to_vec)
                        .unwrap_or_default()
                })
        };
        let version = dict
            .lookup::<u32>(meta::LAYER_TAR_SPLIT_VERSION)
            .ok()
            .flatten();
        let tar_split = match (version, bytes(meta::LAYER_TAR_SPLIT)) {
            (Some(tarsplit::VERSION), Some(r)) => r,
            _ => {
                return Err(Error::InvalidImage {
                    image: format!("layer commit {commit}"),
                    reason: "no tar-split record (re-import the image to make it exportable)"
                        .into(),
                });
            }
        };
        let format = dict
            .lookup::<(u32, String)>(meta::LAYER_EXACT_GZIP_FORMAT)
            .ok()
            .flatten();
        Ok(LayerRecords {
            tar_split,
            digest: dict.lookup::<String>(meta::LAYER_DIGEST).ok().flatten(),
            exact_gzip: bytes(meta::LAYER_EXACT_GZIP).zip(format),
        })
    }

    /// The exact-gzip records that rebuild blob `digest`, or why this build cannot rebuild it
    /// bit for bit from what the layer commit holds.
    ///
    /// # Errors
    /// The reason, for the export report.
    pub fn exact_gzip_for(&self, digest: &Digest) -> std::result::Result<&[u8], String> {
        let Some((records, (version, preflate))) = &self.exact_gzip else {
            return Err(
                "no exact-gzip data (imported without it, or its gzip stream cannot be rebuilt)"
                    .into(),
            );
        };
        if self.digest.as_deref() != Some(digest.as_str()) {
            return Err(format!(
                "the layer was imported from another blob ({})",
                self.digest.as_deref().unwrap_or("unknown")
            ));
        }
        match exact_gzip_supported(*version, preflate) {
            Some(why) => Err(why),
            None => Ok(records),
        }
    }
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

/// How [`write_layer_blob`] makes the blob from the tar.
#[derive(Clone, Copy, Debug)]
#[non_exhaustive]
pub enum BlobEncoding<'a> {
    /// Compressed deterministically (gzip level 6 with mtime 0, zstd level 3) or not at all.
    Compress(Compression),
    /// The original gzip blob, rebuilt from these exact-gzip records
    /// ([`LayerRecords::exact_gzip`]; feature `exact-gzip`, else an error).
    ExactGzip(&'a [u8]),
}

/// Rebuilds the tar of a layer from its `records`, makes the blob from it as `encoding` says
/// into `out`, and checks the tar against `diff_id`.
///
/// # Errors
/// The records are corrupt, an object is missing, the rebuilt tar does not match `diff_id`,
/// or writing fails.
pub fn write_layer_blob(
    repo: &Repo,
    records: &LayerRecords,
    diff_id: &Digest,
    encoding: BlobEncoding<'_>,
    out: &mut dyn Write,
) -> Result<LayerBlobOut> {
    let io_err = |e: io::Error| Error::Io {
        context: format!("rebuilding layer {diff_id}"),
        cause: e,
    };
    let mut blob = HashingWriter::new(out, Hasher::sha256());
    let found = {
        let encoder = match encoding {
            BlobEncoding::Compress(Compression::Gzip) => Encoder::Gzip(
                flate2::GzBuilder::new()
                    .mtime(0)
                    .write(&mut blob, flate2::Compression::default()),
            ),
            BlobEncoding::Compress(Compression::Zstd) => {
                Encoder::Zstd(zstd::stream::Encoder::new(&mut blob, 3).map_err(io_err)?)
            }
            BlobEncoding::Compress(_) => Encoder::Plain(&mut blob, std::marker::PhantomData),
            #[cfg(feature = "exact-gzip")]
            BlobEncoding::ExactGzip(r) => {
                Encoder::Exact(crate::layer::exact_gzip::ExactGzipWriter::new(r, &mut blob))
            }
            #[cfg(not(feature = "exact-gzip"))]
            BlobEncoding::ExactGzip(_) => {
                return Err(io_err(io::Error::other(
                    "this build has no exact-gzip support",
                )));
            }
        };
        let mut tar = HashingWriter::new(encoder, diff_id.hasher()?);
        tarsplit::rebuild(repo, &records.tar_split, &mut tar).map_err(io_err)?;
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

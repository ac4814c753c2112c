//! One layer commit → its exact tar stream → a compressed blob, with both digests computed on
//! the way.

use std::io::{self, Write};

use ostree::{ObjectType, Repo, glib};

use crate::decompress::Compression;
use crate::digest::{Digest, Hasher};
use crate::error::{Error, Result};
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

/// Hands the compressor the stream in chunks of exactly [`CHUNK`] bytes, whatever sizes the
/// tar producer writes, and never passes a flush on. zlib-rs' output depends on how its input
/// is split (measured: the same tar written entry by entry and replayed from tar-split gave
/// two different gzip streams), and a flush mid-stream emits a sync block: with fixed chunks
/// the same tar always gives the same blob, whoever produced it.
struct FixedChunks<W: Write> {
    inner: W,
    buf: Vec<u8>,
}

/// Size of the chunks [`FixedChunks`] hands on.
const CHUNK: usize = 128 << 10;

impl<W: Write> Write for FixedChunks<W> {
    fn write(&mut self, mut data: &[u8]) -> io::Result<usize> {
        let n = data.len();
        while !data.is_empty() {
            let take = (CHUNK - self.buf.len()).min(data.len());
            self.buf.extend_from_slice(&data[..take]);
            data = &data[take..];
            if self.buf.len() == CHUNK {
                self.inner.write_all(&self.buf)?;
                self.buf.clear();
            }
        }
        Ok(n)
    }
    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

impl<W: Write> FixedChunks<W> {
    /// Hands on what is left and returns the inner writer.
    fn finish(mut self) -> io::Result<W> {
        self.inner.write_all(&self.buf)?;
        Ok(self.inner)
    }
}

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

/// Compresses the tar that `tar` writes with `compression` (gzip: level 6, mtime 0; zstd: level
/// 3, so the same tar always gives the same blob) into `out`, hashing the tar with `diff_id`
/// and the blob with sha256 on the way.
///
/// # Errors
/// `tar`'s errors; compression or writing failures as [`Error::Io`] naming `what`.
pub fn write_blob(
    compression: Compression,
    diff_id: Hasher,
    out: &mut dyn Write,
    what: &str,
    tar: &mut dyn FnMut(&mut dyn Write) -> Result<()>,
) -> Result<LayerBlobOut> {
    let io_err = |e: io::Error| Error::Io {
        context: format!("writing {what}"),
        cause: e,
    };
    let mut blob = HashingWriter {
        inner: out,
        hasher: Hasher::sha256(),
        count: 0,
    };
    let diff_id = {
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
        let mut plain = HashingWriter {
            inner: FixedChunks {
                inner: encoder,
                buf: Vec::with_capacity(CHUNK),
            },
            hasher: diff_id,
            count: 0,
        };
        tar(&mut plain)?;
        let HashingWriter {
            inner: chunks,
            hasher,
            ..
        } = plain;
        chunks.finish().and_then(Encoder::finish).map_err(io_err)?;
        hasher.finish()
    };
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
    compression: Compression,
    out: &mut dyn Write,
) -> Result<LayerBlobOut> {
    let what = format!("layer {diff_id}");
    let written = write_blob(compression, diff_id.hasher()?, out, &what, &mut |tar| {
        rebuild_tar(repo, commit, diff_id, tar)
    })?;
    check_diff_id(&written, diff_id)?;
    Ok(written)
}

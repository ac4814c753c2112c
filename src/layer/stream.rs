//! One pass over a layer blob: blob → [`VerifiedReader`] → [`decompress`] → diff_id hash →
//! tar entries → [`LayerBuilder`].
//!
//! Verification and decompression run on a second thread and hand 256 KiB chunks through a
//! bounded channel to the thread that parses the tar; small file objects go on to a third
//! thread that stores them ([`WriteQueue`]). Both cores stay busy and memory stays at a few
//! MiB whatever the layer size.
//!
//! With the `exact-gzip` feature and [`import_layer`]'s `exact_gzip` set, one more thread gets a
//! copy of the compressed bytes and analyses them (module `layer::exact_gzip`) so that export
//! can rebuild the original blob; the import never fails because of it.

use std::io::{self, BufReader, Read};
use std::sync::mpsc::{Receiver, SyncSender, sync_channel};

use ostree::Repo;

use crate::blob::BlobReader;
use crate::blob::VerifiedReader;
use crate::decompress::decompress;
use crate::digest::{Digest, Hasher};
use crate::error::LayerError;
use crate::layer::write_queue::WriteQueue;
use crate::layer::{LayerBuilder, LayerSource, OnSpecial, Skipped};

const CHUNK: usize = 256 << 10;
const CHUNKS_IN_FLIGHT: usize = 16;

/// What is known about a layer blob before it is read.
#[derive(Clone, Debug)]
pub struct LayerBlob {
    /// Blob digest from the manifest.
    pub digest: Digest,
    /// Blob size from the manifest.
    pub size: u64,
    /// diff_id from the config; `None` for an artifact whose config lists none (it is then
    /// computed, not checked).
    pub diff_id: Option<Digest>,
    /// Media type from the manifest.
    pub media_type: String,
    /// A filesystem tar, a file, or whichever its bytes are ([`crate::select::rules`]).
    pub treatment: crate::select::Treatment,
}

/// What became of a layer's exact-gzip analysis (feature `exact-gzip`).
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum ExactGzipStatus {
    /// Not attempted: not asked for, built without the feature, or the blob is not gzip.
    NotAttempted,
    /// Recorded and checked: export rebuilds the original blob bit for bit.
    Kept {
        /// Size of the data recorded in the layer commit.
        data_size: u64,
        /// Size of the blob it rebuilds.
        blob_size: u64,
    },
    /// The gzip stream cannot be rebuilt exactly (why); export re-compresses the layer.
    NotExact(String),
}

/// A layer commit written from a blob.
#[derive(Clone, Debug)]
#[non_exhaustive]
pub struct ImportedLayer {
    /// The layer commit checksum.
    pub commit: String,
    /// The diff_id, as computed (and checked when the config gave one).
    pub diff_id: Digest,
    /// Entries OSTree cannot store that were left out.
    pub skipped: Vec<Skipped>,
    /// Whether the original compressed blob can be rebuilt.
    pub exact_gzip: ExactGzipStatus,
}

/// Passes the blob through, sending a copy of its bytes, in pieces of [`CHUNK`], to the
/// exact-gzip analyser for as long as that one takes them. The copy ends (the channel closes)
/// at the end of the blob, which [`VerifiedReader`] only reports once size and digest are
/// checked.
struct Tee<R> {
    inner: R,
    tx: Option<SyncSender<Vec<u8>>>,
    buf: Vec<u8>,
}

impl<R: Read> Read for Tee<R> {
    fn read(&mut self, out: &mut [u8]) -> io::Result<usize> {
        let n = self.inner.read(out)?;
        if let Some(tx) = &self.tx {
            self.buf.extend_from_slice(&out[..n]);
            if n == 0 || self.buf.len() >= CHUNK {
                let piece = std::mem::replace(&mut self.buf, Vec::with_capacity(CHUNK));
                if (!piece.is_empty() && tx.send(piece).is_err()) || n == 0 {
                    // the analyser gave up, or the blob ended
                    self.tx = None;
                    self.buf = Vec::new();
                }
            }
        }
        Ok(n)
    }
}

/// What the analysis thread returns: the records with their format, `None` for a blob that is
/// not gzip (or a build without the feature), or why the blob cannot be rebuilt.
type Analysed = Result<Option<(Vec<u8>, (u32, String))>, String>;

/// The exact-gzip analysis thread: what [`Tee`] sends comes in, the records or why not go out.
/// The check of the records runs on a thread of its own.
#[cfg(feature = "exact-gzip")]
fn analyse(rx: Receiver<Vec<u8>>, layer: &LayerBlob) -> Analysed {
    use crate::decompress::Compression;
    use crate::layer::exact_gzip::{Analyser, NotExact, PREFLATE_VERSION, VERSION};
    // preflate-rs errors carry a source-location trace on further lines
    let why = |e: NotExact| e.0.lines().next().unwrap_or("").to_string();
    let (analyser, checker, checks) =
        Analyser::with_check_thread(&layer.digest, layer.size).map_err(|e| e.to_string())?;
    let (analysed, checked) = std::thread::scope(|s| {
        let check = s.spawn(|| checker.run(checks));
        // moved in, so that it is dropped (ending the checker's input) before the join
        let analyse = move || {
            let mut a = analyser;
            let mut first = true;
            for piece in rx {
                if std::mem::take(&mut first) && Compression::sniff(&piece) != Compression::Gzip {
                    return Ok(None);
                }
                a.feed(&piece)?;
            }
            a.finish().map(Some)
        };
        let analysed = analyse();
        let checked = check
            .join()
            .unwrap_or_else(|_| Err(NotExact("the check panicked".into())));
        (analysed, checked)
    });
    match analysed.map_err(why)? {
        None => Ok(None),
        Some(exact) => {
            checked.map_err(why)?;
            Ok(Some((
                exact.records,
                (VERSION, PREFLATE_VERSION.to_string()),
            )))
        }
    }
}

/// Without the feature there is nothing to analyse with (and [`import_layer`] starts no tee).
#[cfg(not(feature = "exact-gzip"))]
fn analyse(rx: Receiver<Vec<u8>>, _layer: &LayerBlob) -> Analysed {
    drop(rx);
    Ok(None)
}

/// Reads chunks from the channel as one byte stream, passing each chunk it is done with on
/// to the diff_id hasher.
struct ChannelReader {
    rx: Receiver<io::Result<Vec<u8>>>,
    hash_tx: Option<SyncSender<Vec<u8>>>,
    cur: Vec<u8>,
    pos: usize,
}

impl ChannelReader {
    /// Hands the consumed chunk to the hasher (which stops hashing if it is gone: the
    /// import has failed then).
    fn pass_on(&mut self) {
        let done = std::mem::take(&mut self.cur);
        if let (false, Some(tx)) = (done.is_empty(), &self.hash_tx) {
            if tx.send(done).is_err() {
                self.hash_tx = None;
            }
        }
        self.pos = 0;
    }
}

impl Read for ChannelReader {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        while self.pos == self.cur.len() {
            self.pass_on();
            match self.rx.recv() {
                Ok(Ok(chunk)) => self.cur = chunk,
                Ok(Err(e)) => return Err(e),
                Err(_) => return Ok(0),
            }
        }
        let n = buf.len().min(self.cur.len() - self.pos);
        buf[..n].copy_from_slice(&self.cur[self.pos..self.pos + n]);
        self.pos += n;
        Ok(n)
    }
}

/// Verifies and decompresses `blob`, sending chunks to `tx`.
fn produce(
    blob: BlobReader,
    layer: &LayerBlob,
    tx: &SyncSender<io::Result<Vec<u8>>>,
    tee: Option<SyncSender<Vec<u8>>>,
) -> io::Result<()> {
    let verified = Tee {
        inner: VerifiedReader::new(blob, &layer.digest, layer.size).map_err(io::Error::other)?,
        tx: tee,
        buf: Vec::new(),
    };
    let mut plain = decompress(BufReader::with_capacity(CHUNK, verified))?;
    let context = |e: io::Error| {
        if crate::blob::is_mismatch(&e) {
            e
        } else {
            io::Error::new(e.kind(), format!("decompressing blob: {e}"))
        }
    };
    loop {
        let mut chunk = Vec::with_capacity(CHUNK);
        let n = (&mut plain)
            .take(CHUNK as u64)
            .read_to_end(&mut chunk)
            .map_err(context)?;
        if n == 0 {
            return Ok(());
        }
        if tx.send(Ok(chunk)).is_err() {
            return Err(io::Error::other("layer reader stopped"));
        }
    }
}

/// Imports one layer blob (a tar, maybe compressed) into a layer commit.
///
/// The blob digest, size and diff_id are all checked; any mismatch fails the import (the
/// caller's transaction then leaves nothing behind). With `exact_gzip` (and the `exact-gzip`
/// feature), a gzip blob is also analysed so that export can rebuild it bit for bit; that
/// analysis never fails the import (see [`ExactGzipStatus`]).
///
/// # Errors
/// Any [`LayerError`]; a blob-level failure (digest, size, decompression) takes precedence
/// over the tar error it caused.
pub fn import_layer(
    repo: &Repo,
    blob: BlobReader,
    layer: &LayerBlob,
    on_special: OnSpecial,
    exact_gzip: bool,
) -> Result<ImportedLayer, LayerError> {
    let (tx, rx) = sync_channel(CHUNKS_IN_FLIGHT);
    let (tee, tee_rx) = if exact_gzip && cfg!(feature = "exact-gzip") {
        let (t, r) = sync_channel::<Vec<u8>>(CHUNKS_IN_FLIGHT);
        (Some(t), Some(r))
    } else {
        (None, None)
    };
    let (hash_tx, hash_rx) = sync_channel::<Vec<u8>>(CHUNKS_IN_FLIGHT);
    let mut hasher = match &layer.diff_id {
        Some(d) => d
            .hasher()
            .map_err(|e| LayerError::Read(io::Error::other(e)))?,
        None => Hasher::sha256(),
    };
    let mut builder = LayerBuilder::new(repo, layer.digest.as_str(), on_special)?;
    let (built, produced, written, diff_id, analysed) = std::thread::scope(|s| {
        let analyser = tee_rx.map(|r| s.spawn(|| analyse(r, layer)));
        let (queue, writer) = WriteQueue::spawn(s, repo);
        builder.set_queue(queue);
        let diff_id = s.spawn(move || {
            for chunk in hash_rx {
                hasher.update(&chunk);
            }
            hasher.finish()
        });
        let producer = s.spawn(move || {
            let r = produce(blob, layer, &tx, tee);
            if let Err(e) = &r {
                let _ = tx.send(Err(io::Error::new(e.kind(), e.to_string())));
            }
            r
        });
        let mut reader = ChannelReader {
            rx,
            hash_tx: Some(hash_tx),
            cur: Vec::new(),
            pos: 0,
        };
        // A panic must still close the write queue: its thread would wait for jobs forever,
        // and the scope for that thread (a hang instead of a crash).
        let built = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
            builder.add_tar(&mut reader)
        }))
        .unwrap_or_else(|panic| {
            drop(builder.take_queue());
            std::panic::resume_unwind(panic)
        });
        if built.is_err() {
            // Let the producer finish verifying: a bad blob explains a bad tar.
            let _ = io::copy(&mut reader, &mut io::sink());
        }
        drop(reader);
        let written = match builder.take_queue() {
            Some(q) => q.finish(writer),
            None => Ok(()),
        };
        let produced = producer
            .join()
            .unwrap_or_else(|_| Err(io::Error::other("decompression thread panicked")));
        let analysed = analyser.map(|a| {
            a.join()
                .unwrap_or_else(|_| Err("the analysis panicked".into()))
        });
        (built, produced, written, diff_id.join(), analysed)
    });
    // A bad blob explains a bad tar, and a failed object write the parse it stopped.
    let diff_id = match (built, produced, written) {
        (_, Err(e), _) if e.to_string() != "layer reader stopped" => {
            return Err(LayerError::Read(e));
        }
        (_, _, Err(e)) => return Err(e),
        (Err(e), _, _) => return Err(e),
        (Ok(()), Err(e), _) => return Err(LayerError::Read(e)),
        (Ok(()), Ok(()), Ok(())) => {
            diff_id.map_err(|_| LayerError::Read(io::Error::other("diff_id thread panicked")))?
        }
    };
    if let Some(expected) = layer.diff_id.as_ref().filter(|&e| *e != diff_id) {
        return Err(LayerError::DiffIdMismatch {
            expected: expected.to_string(),
            found: diff_id.to_string(),
        });
    }
    let exact_gzip = match analysed {
        None | Some(Ok(None)) => ExactGzipStatus::NotAttempted,
        Some(Err(why)) => ExactGzipStatus::NotExact(why),
        Some(Ok(Some((records, format)))) => {
            let data_size = records.len() as u64;
            builder.set_exact_gzip(records, format);
            ExactGzipStatus::Kept {
                data_size,
                blob_size: layer.size,
            }
        }
    };
    let (commit, skipped) = builder.commit(&LayerSource {
        digest: layer.digest.to_string(),
        diff_id: diff_id.to_string(),
        media_type: layer.media_type.clone(),
    })?;
    Ok(ImportedLayer {
        commit,
        diff_id,
        skipped,
        exact_gzip,
    })
}

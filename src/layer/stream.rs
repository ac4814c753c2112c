//! One pass over a layer blob: blob → [`VerifiedReader`] → [`decompress`] → diff_id hash →
//! tar entries → [`LayerBuilder`].
//!
//! Verification and decompression run on a second thread and hand 256 KiB chunks through a
//! bounded channel to the thread that parses the tar; small file objects go on to a third
//! thread that stores them ([`WriteQueue`]). Both cores stay busy and memory stays at a few
//! MiB whatever the layer size.

use std::io::{self, BufReader, Read};
use std::sync::mpsc::{Receiver, SyncSender, sync_channel};

use ostree::Repo;

use crate::blob::VerifiedReader;
use crate::decompress::decompress;
use crate::digest::{Digest, Hasher};
use crate::error::LayerError;
use crate::layer::write_queue::WriteQueue;
use crate::layer::{LayerBuilder, LayerSource, OnSpecial, Skipped};
use crate::source::BlobReader;

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
    /// For an artifact layer (not a filesystem tar): the file it becomes
    /// ([`crate::select::file_name`]).
    pub file_name: Option<String>,
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
) -> io::Result<()> {
    let verified =
        VerifiedReader::new(blob, &layer.digest, layer.size).map_err(io::Error::other)?;
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
/// caller's transaction then leaves nothing behind).
///
/// # Errors
/// Any [`LayerError`]; a blob-level failure (digest, size, decompression) takes precedence
/// over the tar error it caused.
pub fn import_layer(
    repo: &Repo,
    blob: BlobReader,
    layer: &LayerBlob,
    on_special: OnSpecial,
) -> Result<ImportedLayer, LayerError> {
    let (tx, rx) = sync_channel(CHUNKS_IN_FLIGHT);
    let (hash_tx, hash_rx) = sync_channel::<Vec<u8>>(CHUNKS_IN_FLIGHT);
    let mut hasher = match &layer.diff_id {
        Some(d) => d
            .hasher()
            .map_err(|e| LayerError::Read(io::Error::other(e)))?,
        None => Hasher::sha256(),
    };
    let mut builder = LayerBuilder::new(repo, layer.digest.as_str(), on_special)?;
    let (built, produced, written, diff_id) = std::thread::scope(|s| {
        let (queue, writer) = WriteQueue::spawn(s, repo);
        builder.set_queue(queue);
        let diff_id = s.spawn(move || {
            for chunk in hash_rx {
                hasher.update(&chunk);
            }
            hasher.finish()
        });
        let producer = s.spawn(move || {
            let r = produce(blob, layer, &tx);
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
        let built = builder.add_tar(&mut reader);
        if built.is_err() {
            // Let the producer finish verifying: a bad blob explains a bad tar.
            let _ = io::copy(&mut reader, &mut io::sink());
        }
        drop(reader);
        let written = match builder.take_queue() {
            Some(q) => q.finish(writer),
            None => Ok(()),
        };
        (
            built,
            producer
                .join()
                .unwrap_or_else(|_| Err(io::Error::other("decompression thread panicked"))),
            written,
            diff_id.join(),
        )
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
    let (commit, skipped) = builder.commit(&LayerSource {
        digest: layer.digest.to_string(),
        diff_id: diff_id.to_string(),
        media_type: layer.media_type.clone(),
    })?;
    Ok(ImportedLayer {
        commit,
        diff_id,
        skipped,
    })
}

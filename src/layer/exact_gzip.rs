//! Exact gzip: what it takes to rebuild an imported gzip layer blob bit for bit from its
//! uncompressed tar (feature `exact-gzip`).
//!
//! A gzip blob is members of header, DEFLATE stream and 8-byte trailer. Headers and trailers are
//! kept verbatim. The DEFLATE streams are analysed with the [`preflate_rs`] crate, which finds
//! the parameters of the compressor that wrote them and records, for each piece of the stream,
//! the few decisions those parameters do not predict ("corrections"); replaying the corrections
//! over the same uncompressed bytes gives the same DEFLATE bytes back. This works for zlib-based
//! compressors (gzip, pigz) at levels 1–6 and for small streams of any origin; it does not for
//! zlib level 9, Go's `compress/flate` and `pgzip` (docker, BuildKit, skopeo, umoci), libdeflate
//! and miniz/flate2 output (see `DESIGN.md` §6). Where it does not, the layer simply has no
//! exact data and export re-compresses it.
//!
//! [`Analyser`] runs during import on the compressed bytes, in 1 MiB pieces (memory stays
//! flat), and rebuilds the blob from what it recorded right away, through the same
//! rebuilder export uses, hashing the result: data that does not give back the blob's
//! digest is dropped. [`ExactGzipWriter`] rebuilds the blob at export from the tar stream.
//!
//! The records are kept in the layer commit's metadata ([`crate::meta::LAYER_EXACT_GZIP`]) with
//! their format: this module's [`VERSION`] and the preflate-rs version ([`PREFLATE_VERSION`]),
//! since corrections replay only with the version that made them. They are stored as they are,
//! not zstd-compressed like the tar-split: the corrections are already entropy-coded (zstd -19
//! took 3% off the 21 KB of records of a 64 MB `gzip -6` layer).
//!
//! Record format (version [`VERSION`]), concatenated: `b'R'`, u32 BE length, bytes copied
//! verbatim (gzip headers and trailers); `b'S'`: a new DEFLATE stream starts; `b'C'`, u64 BE
//! uncompressed length, u64 BE compressed length, u32 BE length, corrections: the next piece of
//! the current DEFLATE stream, rebuilt from that many bytes of the tar stream.

use std::io::{self, Cursor, Read, Write};
use std::panic::{AssertUnwindSafe, catch_unwind};
use std::sync::mpsc::{Receiver, SyncSender, sync_channel};

use preflate_rs::{
    ExitCode, PreflateConfig, PreflateError, PreflateStreamProcessor, RecreateStreamProcessor,
};

use crate::blob::HashingWriter;
use crate::digest::Digest;

/// Version of the record format, stored beside it.
pub const VERSION: u32 = 1;

/// The preflate-rs version the records are made with (pinned in `Cargo.toml`; a unit test
/// checks the two agree).
pub const PREFLATE_VERSION: &str = "0.7.6";

/// Compressed bytes handed to preflate at a time.
const CHUNK: usize = 1 << 20;
/// Uncompressed bytes preflate may produce from one piece before it stops at a block boundary.
const PLAIN_LIMIT: usize = 16 << 20;
/// A DEFLATE block larger than this (compressed) is not analysed: memory stays bounded.
const MAX_PENDING: usize = 64 << 20;
/// preflate counts stream positions in 32 bits: longer members are not analysed.
const MEMBER_LIMIT: u64 = (1 << 31) - (PLAIN_LIMIT as u64) * 2;
/// Streams whose compressor searched longer match chains than this (as preflate-rs estimates
/// them from the first piece) are refused at once: zlib level 9 (4096). Its analysis costs
/// several times a level-6 one and on real layers often fails late: `gzip -9` of the Debian
/// base tar failed (`PredictionFailure`) after 67 s, against 20 s for a successful `gzip -6`
/// one. Level 8 uses 1024; flate2 (zlib-rs) level 6 output is estimated at 600–750.
/// Blobs up to [`SMALL_BLOB`] are analysed whatever their chains (preflate-rs' own cap):
/// that costs a fraction of a second, and small layers of any origin often work (umoci's
/// 288-byte whiteout layer in the benchmark needs chains of 1721).
const MAX_CHAIN: u32 = 1024;
/// See [`MAX_CHAIN`].
const SMALL_BLOB: u64 = 256 << 10;
/// preflate-rs' own cap on chain length (its default).
const MAX_CHAIN_SMALL: u32 = 4096;
/// Blobs of more gzip members than this are not analysed (each member starts a new analysis).
const MAX_MEMBERS: usize = 1024;
/// gzip headers longer than this (file name, comment, extra field) are not analysed.
const MAX_HEADER: usize = 1 << 20;

/// Why a blob has no exact data. Not an import error: the layer imports, export re-compresses.
#[derive(Debug, thiserror::Error)]
#[error("{0}")]
pub struct NotExact(pub String);

fn not_exact(why: impl Into<String>) -> NotExact {
    NotExact(why.into())
}

/// One record of the format described in the module documentation.
#[derive(Clone, Debug, PartialEq, Eq)]
enum Record {
    Raw(Vec<u8>),
    Stream,
    Chunk {
        plain: u64,
        compressed: u64,
        corrections: Vec<u8>,
    },
}

impl Record {
    fn write_to(&self, w: &mut impl Write) -> io::Result<()> {
        match self {
            Record::Raw(b) => {
                let len = u32::try_from(b.len()).map_err(io::Error::other)?;
                w.write_all(b"R")?;
                w.write_all(&len.to_be_bytes())?;
                w.write_all(b)
            }
            Record::Stream => w.write_all(b"S"),
            Record::Chunk {
                plain,
                compressed,
                corrections,
            } => {
                let len = u32::try_from(corrections.len()).map_err(io::Error::other)?;
                w.write_all(b"C")?;
                w.write_all(&plain.to_be_bytes())?;
                w.write_all(&compressed.to_be_bytes())?;
                w.write_all(&len.to_be_bytes())?;
                w.write_all(corrections)
            }
        }
    }

    /// The next record, `None` at the end.
    fn read_from(r: &mut impl Read) -> io::Result<Option<Record>> {
        fn bytes<const N: usize>(r: &mut impl Read) -> io::Result<[u8; N]> {
            let mut b = [0u8; N];
            r.read_exact(&mut b)?;
            Ok(b)
        }
        fn vec(r: &mut impl Read, len: u32) -> io::Result<Vec<u8>> {
            let mut v = Vec::new();
            r.take(u64::from(len)).read_to_end(&mut v)?;
            if v.len() != len as usize {
                return Err(io::Error::new(
                    io::ErrorKind::UnexpectedEof,
                    "exact-gzip: truncated record",
                ));
            }
            Ok(v)
        }
        let mut tag = [0u8; 1];
        if r.read(&mut tag)? == 0 {
            return Ok(None);
        }
        Ok(Some(match tag[0] {
            b'R' => {
                let len = u32::from_be_bytes(bytes(r)?);
                Record::Raw(vec(r, len)?)
            }
            b'S' => Record::Stream,
            b'C' => {
                let plain = u64::from_be_bytes(bytes(r)?);
                let compressed = u64::from_be_bytes(bytes(r)?);
                let len = u32::from_be_bytes(bytes(r)?);
                Record::Chunk {
                    plain,
                    compressed,
                    corrections: vec(r, len)?,
                }
            }
            other => {
                return Err(io::Error::other(format!(
                    "exact-gzip: unknown record {other:#x}"
                )));
            }
        }))
    }
}

/// Runs a preflate call, turning a panic (the crate asserts on some inputs) into an error.
fn guarded<T>(f: impl FnOnce() -> preflate_rs::Result<T>) -> Result<T, PreflateError> {
    catch_unwind(AssertUnwindSafe(f)).unwrap_or_else(|_| {
        Err(PreflateError::new(
            ExitCode::AssertionFailure,
            "preflate-rs panicked",
        ))
    })
}

fn preflate_io(e: PreflateError) -> io::Error {
    io::Error::other(format!("exact-gzip: preflate-rs: {e}"))
}

/// Applies records to the uncompressed data they describe, writing the compressed blob.
/// Shared by the check at import and the rebuild at export.
struct Rebuilder<W> {
    out: W,
    stream: Option<RecreateStreamProcessor>,
}

impl<W: Write> Rebuilder<W> {
    fn new(out: W) -> Self {
        Rebuilder { out, stream: None }
    }

    /// Applies `rec`; `plain` is the uncompressed data of a chunk (empty for other records).
    fn apply(&mut self, rec: &Record, plain: &[u8]) -> io::Result<()> {
        match rec {
            Record::Raw(b) => self.out.write_all(b),
            Record::Stream => {
                self.stream = Some(RecreateStreamProcessor::new());
                Ok(())
            }
            Record::Chunk {
                plain: len,
                compressed,
                corrections,
            } => {
                if plain.len() as u64 != *len {
                    return Err(io::Error::other(
                        "exact-gzip: chunk length does not match its record",
                    ));
                }
                let stream = self
                    .stream
                    .as_mut()
                    .ok_or_else(|| io::Error::other("exact-gzip: chunk outside a stream"))?;
                let (bytes, _blocks) =
                    guarded(|| stream.recompress(&mut Cursor::new(plain), corrections))
                        .map_err(preflate_io)?;
                if bytes.len() as u64 != *compressed {
                    return Err(io::Error::other(format!(
                        "exact-gzip: chunk rebuilt to {} bytes, recorded {compressed}",
                        bytes.len()
                    )));
                }
                self.out.write_all(&bytes)
            }
        }
    }
}

/// Where the analyser is in the gzip framing.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum State {
    Header,
    Deflate,
    Trailer,
}

/// The length of the gzip member header at the start of `buf`; `None` if more bytes are needed.
fn gzip_header_len(buf: &[u8]) -> Result<Option<usize>, NotExact> {
    if buf.len() >= 2 && buf[..2] != [0x1f, 0x8b] {
        return Err(not_exact("data after a gzip member is not another member"));
    }
    if buf.len() < 10 {
        return Ok(None);
    }
    if buf[2] != 8 {
        return Err(not_exact("gzip compression method is not DEFLATE"));
    }
    let flags = buf[3];
    if flags & 0xe0 != 0 {
        return Err(not_exact("reserved gzip header flags set"));
    }
    let mut pos = 10;
    if flags & 0x04 != 0 {
        let Some(x) = buf.get(pos..pos + 2) else {
            return Ok(None);
        };
        pos += 2 + usize::from(u16::from_le_bytes([x[0], x[1]]));
    }
    for flag in [0x08, 0x10] {
        if flags & flag != 0 {
            let Some(nul) = buf.get(pos..).and_then(|b| b.iter().position(|&c| c == 0)) else {
                return Ok(None);
            };
            pos += nul + 1;
        }
    }
    if flags & 0x02 != 0 {
        pos += 2;
    }
    Ok((buf.len() >= pos).then_some(pos))
}

/// What an [`Analyser`] found: the records, ready for the layer commit.
#[derive(Clone, Debug)]
pub struct ExactGzip {
    /// The records (see the module documentation).
    pub records: Vec<u8>,
    /// gzip members in the blob.
    pub members: usize,
}

/// The check of an [`Analyser`]'s records: rebuilds the blob from each record's encoded form
/// as it is made, the way export will, and hashes the result.
struct Checking {
    rebuilder: Rebuilder<HashingWriter<io::Sink>>,
    expected: Digest,
}

/// One encoded record and the uncompressed data of its chunk (empty for other records).
pub type Checked = (Vec<u8>, Vec<u8>);

impl Checking {
    fn new(digest: &Digest) -> crate::Result<Self> {
        Ok(Checking {
            rebuilder: Rebuilder::new(HashingWriter::new(io::sink(), digest.hasher()?)),
            expected: digest.clone(),
        })
    }

    fn check(&mut self, encoded: &[u8], plain: &[u8]) -> Result<(), NotExact> {
        let rec = Record::read_from(&mut &encoded[..])
            .ok()
            .flatten()
            .ok_or_else(|| not_exact("record does not read back"))?;
        self.rebuilder
            .apply(&rec, plain)
            .map_err(|e| not_exact(format!("check rebuild: {e}")))
    }

    /// The size of the rebuilt blob, if it hashes to the digest.
    fn finish(self) -> Result<u64, NotExact> {
        let size = self.rebuilder.out.count;
        let found = self.rebuilder.out.hasher.finish();
        if found != self.expected {
            return Err(not_exact(format!(
                "rebuilt blob hashes to {found}, not {}",
                self.expected
            )));
        }
        Ok(size)
    }
}

/// The check of an [`Analyser`] made by [`Analyser::with_check_thread`], to run on a thread
/// of its own.
#[derive(Debug)]
pub struct Checker {
    expected: Digest,
}

impl Checker {
    /// Checks what the analyser sends until it finishes: rebuilds the blob from each record's
    /// encoded form, the way export will, and hashes the result. Returns the size of the
    /// rebuilt blob if it hashes to the digest. Stops (and so stops the analyser) at the first
    /// record that does not rebuild.
    ///
    /// # Errors
    /// The records do not rebuild the blob.
    pub fn run(self, rx: Receiver<Checked>) -> Result<u64, NotExact> {
        let mut c = Checking::new(&self.expected).map_err(|e| not_exact(e.to_string()))?;
        for (encoded, plain) in rx {
            c.check(&encoded, &plain)?;
        }
        c.finish()
    }
}

/// Where an [`Analyser`] sends its records to be checked.
enum Check {
    Inline(Box<Checking>),
    Thread(SyncSender<Checked>),
}

/// Analyses a gzip blob fed to it piece by piece (see the module documentation).
pub struct Analyser {
    pending: Vec<u8>,
    /// Call preflate once `pending` holds this much (more after a block did not fit).
    want: usize,
    state: State,
    stream: Option<PreflateStreamProcessor>,
    member_plain: u64,
    members: usize,
    records: Vec<u8>,
    scratch: Vec<u8>,
    check: Check,
    /// Longest match chain the compressor may have used (see [`MAX_CHAIN`]).
    max_chain: u32,
}

impl std::fmt::Debug for Analyser {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Analyser")
            .field("state", &self.state)
            .field("pending", &self.pending.len())
            .field("members", &self.members)
            .field("records", &self.records.len())
            .finish_non_exhaustive()
    }
}

impl Analyser {
    /// Starts the analysis of a blob of `size` bytes that must hash to `digest`, checking the
    /// records as they are made.
    ///
    /// # Errors
    /// The digest's algorithm cannot be computed.
    pub fn new(digest: &Digest, size: u64) -> crate::Result<Self> {
        Ok(Self::with(
            Check::Inline(Box::new(Checking::new(digest)?)),
            size,
        ))
    }

    /// Like [`Analyser::new`], but the check (which costs about as much as the analysis) is
    /// left to the returned [`Checker`], to run on another thread: the records are right only
    /// if both [`Analyser::finish`] and [`Checker::run`] succeed.
    ///
    /// # Errors
    /// The digest's algorithm cannot be computed.
    pub fn with_check_thread(
        digest: &Digest,
        size: u64,
    ) -> crate::Result<(Self, Checker, Receiver<Checked>)> {
        digest.hasher()?;
        let checker = Checker {
            expected: digest.clone(),
        };
        // two chunks in flight: each holds up to PLAIN_LIMIT of uncompressed data
        let (tx, rx) = sync_channel(2);
        Ok((Self::with(Check::Thread(tx), size), checker, rx))
    }

    fn with(check: Check, size: u64) -> Self {
        Analyser {
            max_chain: if size <= SMALL_BLOB {
                MAX_CHAIN_SMALL
            } else {
                MAX_CHAIN
            },
            pending: Vec::new(),
            want: CHUNK,
            state: State::Header,
            stream: None,
            member_plain: 0,
            members: 0,
            records: Vec::new(),
            scratch: Vec::new(),
            check,
        }
    }

    /// Takes the next bytes of the blob.
    ///
    /// # Errors
    /// The stream cannot be rebuilt exactly; feed no more.
    pub fn feed(&mut self, data: &[u8]) -> Result<(), NotExact> {
        self.pending.extend_from_slice(data);
        self.step(false)
    }

    /// Ends the blob; returns the records if they rebuild it exactly (made by
    /// [`Analyser::with_check_thread`]: if the [`Checker`] agrees).
    ///
    /// # Errors
    /// The stream cannot be rebuilt exactly, or the rebuild does not hash to the digest.
    pub fn finish(mut self) -> Result<ExactGzip, NotExact> {
        self.step(true)?;
        if self.state != State::Header || !self.pending.is_empty() || self.members == 0 {
            return Err(not_exact("the gzip stream ends early"));
        }
        if let Check::Inline(checker) = self.check {
            checker.finish()?;
        }
        Ok(ExactGzip {
            records: self.records,
            members: self.members,
        })
    }

    /// Records `rec` and has it checked from its encoded form, as export will read it.
    fn emit(&mut self, rec: &Record, plain: Vec<u8>) -> Result<(), NotExact> {
        self.scratch.clear();
        rec.write_to(&mut self.scratch)
            .map_err(|e| not_exact(e.to_string()))?;
        self.records.extend_from_slice(&self.scratch);
        match &mut self.check {
            Check::Inline(checker) => checker.check(&self.scratch, &plain),
            Check::Thread(tx) => tx
                .send((self.scratch.clone(), plain))
                .map_err(|_| not_exact("the check failed")),
        }
    }

    fn step(&mut self, eof: bool) -> Result<(), NotExact> {
        loop {
            match self.state {
                State::Header => {
                    if self.pending.is_empty() {
                        return Ok(());
                    }
                    let Some(n) = gzip_header_len(&self.pending)? else {
                        if eof {
                            return Err(not_exact("truncated gzip header"));
                        }
                        if self.pending.len() > MAX_HEADER {
                            return Err(not_exact("gzip header too long"));
                        }
                        return Ok(());
                    };
                    if self.members == MAX_MEMBERS {
                        return Err(not_exact("too many gzip members"));
                    }
                    let header: Vec<u8> = self.pending.drain(..n).collect();
                    self.emit(&Record::Raw(header), Vec::new())?;
                    self.emit(&Record::Stream, Vec::new())?;
                    let config = PreflateConfig {
                        plain_text_limit: PLAIN_LIMIT,
                        max_chain_length: self.max_chain,
                        // emit() has every chunk rebuilt from its encoded record instead
                        verify_compression: false,
                    };
                    self.stream = Some(PreflateStreamProcessor::new(&config));
                    self.member_plain = 0;
                    self.members += 1;
                    self.want = CHUNK;
                    self.state = State::Deflate;
                }
                State::Deflate => {
                    if !eof && self.pending.len() < self.want {
                        return Ok(());
                    }
                    let stream = self
                        .stream
                        .as_mut()
                        .ok_or_else(|| not_exact("no DEFLATE stream started"))?;
                    let pending = &self.pending;
                    match guarded(|| stream.decompress(pending)) {
                        Ok(r) if r.compressed_size > 0 => {
                            let plain = stream.plain_text().text().to_vec();
                            let done = stream.is_done();
                            stream.shrink_to_dictionary();
                            self.member_plain += plain.len() as u64;
                            if self.member_plain > MEMBER_LIMIT {
                                return Err(not_exact("gzip member too large for preflate-rs"));
                            }
                            let rec = Record::Chunk {
                                plain: plain.len() as u64,
                                compressed: r.compressed_size as u64,
                                corrections: r.corrections,
                            };
                            self.emit(&rec, plain)?;
                            self.pending.drain(..r.compressed_size);
                            self.want = CHUNK;
                            if done {
                                self.stream = None;
                                self.state = State::Trailer;
                            }
                        }
                        Ok(_) => return Err(not_exact("preflate-rs made no progress")),
                        Err(e) if e.exit_code() == ExitCode::ShortRead && !eof => {
                            // one block is larger than what we have: wait for more
                            if self.pending.len() > MAX_PENDING {
                                return Err(not_exact("DEFLATE block too large"));
                            }
                            self.want = self.pending.len() + CHUNK;
                            return Ok(());
                        }
                        Err(e) => return Err(not_exact(format!("preflate-rs: {e}"))),
                    }
                }
                State::Trailer => {
                    if self.pending.len() < 8 {
                        if eof {
                            return Err(not_exact("truncated gzip trailer"));
                        }
                        return Ok(());
                    }
                    let trailer: Vec<u8> = self.pending.drain(..8).collect();
                    self.emit(&Record::Raw(trailer), Vec::new())?;
                    self.state = State::Header;
                }
            }
        }
    }
}

/// Rebuilds a gzip blob at export: takes the layer's tar stream as it is written, writes the
/// original compressed bytes to the inner writer.
///
/// [`ExactGzipWriter::finish`] must be called: it writes the last trailer and checks that the
/// tar stream and the records ended together.
pub struct ExactGzipWriter<'r, W: Write> {
    records: &'r [u8],
    rebuilder: Rebuilder<W>,
    /// The chunk being filled and its uncompressed data so far.
    current: Option<Record>,
    buf: Vec<u8>,
}

impl<W: Write> std::fmt::Debug for ExactGzipWriter<'_, W> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ExactGzipWriter")
            .field("records_left", &self.records.len())
            .field("buffered", &self.buf.len())
            .finish_non_exhaustive()
    }
}

impl<'r, W: Write> ExactGzipWriter<'r, W> {
    /// A writer replaying `records` (from [`ExactGzip::records`]) into `out`.
    pub fn new(records: &'r [u8], out: W) -> Self {
        ExactGzipWriter {
            records,
            rebuilder: Rebuilder::new(out),
            current: None,
            buf: Vec::new(),
        }
    }

    /// Applies records up to the next chunk that needs data; `false` if none is left.
    fn advance(&mut self) -> io::Result<bool> {
        while self.current.is_none() {
            let Some(rec) = Record::read_from(&mut self.records)? else {
                return Ok(false);
            };
            match rec {
                Record::Chunk { plain, .. } if plain > 0 => {
                    // one chunk's data is buffered whole: bounded by PLAIN_LIMIT at import
                    let cap = usize::try_from(plain)
                        .unwrap_or(usize::MAX)
                        .min(PLAIN_LIMIT * 2);
                    self.buf = Vec::with_capacity(cap);
                    self.current = Some(rec);
                }
                other => self.rebuilder.apply(&other, &[])?,
            }
        }
        Ok(true)
    }

    /// Writes what follows the last chunk and checks that nothing is missing; returns the
    /// inner writer.
    ///
    /// # Errors
    /// The tar stream was shorter than the records say, or writing fails.
    pub fn finish(mut self) -> io::Result<W> {
        if self.current.is_some() || self.advance()? {
            return Err(io::Error::other(
                "exact-gzip: the tar stream is shorter than recorded",
            ));
        }
        Ok(self.rebuilder.out)
    }
}

impl<W: Write> Write for ExactGzipWriter<'_, W> {
    fn write(&mut self, data: &[u8]) -> io::Result<usize> {
        if data.is_empty() {
            return Ok(0);
        }
        if !self.advance()? {
            return Err(io::Error::other(
                "exact-gzip: the tar stream is longer than recorded",
            ));
        }
        let plain = match &self.current {
            Some(Record::Chunk { plain, .. }) => *plain,
            _ => return Err(io::Error::other("exact-gzip: no chunk to fill")),
        };
        let need = (plain - self.buf.len() as u64).min(data.len() as u64) as usize;
        self.buf.extend_from_slice(&data[..need]);
        if self.buf.len() as u64 == plain
            && let Some(rec) = self.current.take()
        {
            let buf = std::mem::take(&mut self.buf);
            self.rebuilder.apply(&rec, &buf)?;
        }
        Ok(need)
    }

    fn flush(&mut self) -> io::Result<()> {
        self.rebuilder.out.flush()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn gzip(data: &[u8], level: u32) -> Vec<u8> {
        let mut e = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::new(level));
        e.write_all(data).unwrap();
        e.finish().unwrap()
    }

    fn analyse(blob: &[u8], piece: usize) -> Result<ExactGzip, NotExact> {
        let size = blob.len() as u64;
        let mut a = Analyser::new(&Digest::sha256_of(blob), size).unwrap();
        for p in blob.chunks(piece) {
            a.feed(p)?;
        }
        let inline = a.finish();
        // the same on two threads
        let (mut a, checker, rx) =
            Analyser::with_check_thread(&Digest::sha256_of(blob), size).unwrap();
        let (threaded, size) = std::thread::scope(|s| {
            let c = s.spawn(|| checker.run(rx));
            // the analyser must be gone (dropping its sender) before the checker is joined
            let r = (move || {
                for p in blob.chunks(piece) {
                    a.feed(p)?;
                }
                a.finish()
            })();
            (r, c.join().unwrap())
        });
        match (&inline, threaded, size) {
            (Ok(i), Ok(t), Ok(n)) => {
                assert_eq!((&i.records, n), (&t.records, blob.len() as u64));
            }
            (Err(_), Ok(_), Ok(_)) => panic!("only the threaded check passed"),
            _ => {}
        }
        inline
    }

    fn rebuild(records: &[u8], plain: &[u8], piece: usize) -> io::Result<Vec<u8>> {
        let mut w = ExactGzipWriter::new(records, Vec::new());
        for p in plain.chunks(piece) {
            w.write_all(p)?;
        }
        w.finish()
    }

    /// Text-like data, compressible but not trivially.
    fn sample(n: usize) -> Vec<u8> {
        let mut x = 0x1234_5678u32;
        (0..n)
            .map(|i| {
                x ^= x << 13;
                x ^= x >> 17;
                x ^= x << 5;
                if i % 7 == 0 {
                    b'a' + (x % 26) as u8
                } else {
                    b"the quick brown fox "[i % 20]
                }
            })
            .collect()
    }

    #[test]
    fn preflate_version_matches_the_pin() {
        let toml = include_str!("../../Cargo.toml");
        assert!(
            toml.contains(&format!(
                "preflate-rs = {{ version = \"={PREFLATE_VERSION}\""
            )),
            "PREFLATE_VERSION must equal the version pinned in Cargo.toml"
        );
    }

    #[test]
    fn records_read_back() {
        let recs = [
            Record::Raw(vec![1, 2, 3]),
            Record::Stream,
            Record::Chunk {
                plain: 7,
                compressed: 3,
                corrections: vec![9; 40],
            },
        ];
        let mut buf = Vec::new();
        for r in &recs {
            r.write_to(&mut buf).unwrap();
        }
        let mut rd = &buf[..];
        for r in &recs {
            assert_eq!(Record::read_from(&mut rd).unwrap().as_ref(), Some(r));
        }
        assert_eq!(Record::read_from(&mut rd).unwrap(), None);
        let mut cut = &buf[..buf.len() - 1];
        let end = std::iter::from_fn(|| Record::read_from(&mut cut).transpose()).last();
        assert!(matches!(end, Some(Err(_))), "a cut record is an error");
    }

    /// Several chunks and two members, fed and rebuilt in odd piece sizes.
    #[test]
    fn multi_member_roundtrip() {
        let plain = sample(3 << 20);
        let blob = [gzip(&plain[..1 << 20], 6), gzip(&plain[1 << 20..], 1)].concat();
        let exact = analyse(&blob, 100_003).unwrap();
        assert_eq!(exact.members, 2);
        assert!(
            exact.records.len() < blob.len() / 20,
            "{}",
            exact.records.len()
        );
        assert_eq!(rebuild(&exact.records, &plain, 65_537).unwrap(), blob);
    }

    #[test]
    fn header_fields_are_kept() {
        let plain = sample(10_000);
        let mut e = flate2::GzBuilder::new()
            .filename("layer.tar")
            .comment("hi")
            .extra(vec![1, 2, 3])
            .mtime(12345)
            .write(Vec::new(), flate2::Compression::new(6));
        e.write_all(&plain).unwrap();
        let blob = e.finish().unwrap();
        let exact = analyse(&blob, 3).unwrap();
        assert_eq!(rebuild(&exact.records, &plain, 1).unwrap(), blob);
    }

    #[test]
    fn wrong_plain_text_fails() {
        let plain = sample(100_000);
        let blob = gzip(&plain, 6);
        let exact = analyse(&blob, 1 << 20).unwrap();
        let mut longer = plain.clone();
        longer.push(0);
        assert!(rebuild(&exact.records, &longer, 4096).is_err());
        assert!(rebuild(&exact.records, &plain[1..], 4096).is_err());
    }

    #[test]
    fn garbage_is_not_exact_and_does_not_panic() {
        for blob in [
            vec![],
            vec![0x1f, 0x8b, 8, 0, 0, 0, 0, 0, 0, 3, 0xff, 0xff, 0xff],
            vec![0x1f, 0x8b, 9, 0, 0, 0, 0, 0, 0, 3],
            b"not gzip at all".to_vec(),
        ] {
            assert!(analyse(&blob, 5).is_err(), "{blob:?}");
        }
        // a valid member followed by junk
        let mut blob = gzip(b"hello", 6);
        blob.extend(b"junk");
        assert!(analyse(&blob, 5).is_err());
    }

    /// Damaged records (a bad copy of the metadata) give an error, other bytes or (where the
    /// damage hits bits the decoder never reads) the same bytes, never a panic: export checks
    /// the digest and re-compresses.
    #[test]
    fn corrupt_records_fail_cleanly() {
        let plain = sample(300_000);
        let blob = gzip(&plain, 6);
        let exact = analyse(&blob, 1 << 20).unwrap();
        for i in (0..exact.records.len()).step_by((exact.records.len() / 40).max(1)) {
            let mut bad = exact.records.clone();
            bad[i] ^= 0x55;
            let _ = rebuild(&bad, &plain, 8192);
        }
        assert!(rebuild(&exact.records[..exact.records.len() / 2], &plain, 8192).is_err());
    }

    #[test]
    fn empty_member() {
        let blob = gzip(b"", 6);
        let exact = analyse(&blob, 1).unwrap();
        assert_eq!(rebuild(&exact.records, b"", 1).unwrap(), blob);
    }
}

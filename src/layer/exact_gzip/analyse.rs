//! Import's side: analyses a gzip blob piece by piece into records, and checks them by
//! rebuilding the blob from them as they are made.

use std::io;
use std::sync::mpsc::{Receiver, SyncSender, sync_channel};

use preflate_rs::{ExitCode, PreflateConfig, PreflateStreamProcessor};

use super::record::{Rebuilder, Record, guarded};
use super::{
    CHUNK, MAX_CHAIN, MAX_CHAIN_SMALL, MAX_HEADER, MAX_MEMBERS, MAX_PENDING, MEMBER_LIMIT,
    NotExact, PLAIN_LIMIT, SMALL_BLOB, not_exact,
};
use crate::blob::HashingWriter;
use crate::digest::Digest;

/// Where the analyser is in the gzip framing.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum State {
    Header,
    Deflate,
    Trailer,
}

/// The length of the gzip member header at the start of `buf`; `None` if more bytes are needed.
pub(super) fn gzip_header_len(buf: &[u8]) -> Result<Option<usize>, NotExact> {
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
    fn new(digest: &Digest) -> crate::error::Result<Self> {
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
    pub fn new(digest: &Digest, size: u64) -> crate::error::Result<Self> {
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
    ) -> crate::error::Result<(Self, Checker, Receiver<Checked>)> {
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

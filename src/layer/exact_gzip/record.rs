//! The record format (see the module above) and the rebuilder that replays records over the
//! uncompressed data they describe, shared by the check at import and the rebuild at export.

use std::io::{self, Cursor, Read, Write};
use std::panic::{AssertUnwindSafe, catch_unwind};

use preflate_rs::{ExitCode, PreflateError, RecreateStreamProcessor};

/// One record of the format described in the module documentation.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(super) enum Record {
    Raw(Vec<u8>),
    Stream,
    Chunk {
        plain: u64,
        compressed: u64,
        corrections: Vec<u8>,
    },
}

impl Record {
    pub(super) fn write_to(&self, w: &mut impl Write) -> io::Result<()> {
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
    pub(super) fn read_from(r: &mut impl Read) -> io::Result<Option<Record>> {
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
pub(super) fn guarded<T>(f: impl FnOnce() -> preflate_rs::Result<T>) -> Result<T, PreflateError> {
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
pub(super) struct Rebuilder<W> {
    pub(super) out: W,
    stream: Option<RecreateStreamProcessor>,
}

impl<W: Write> Rebuilder<W> {
    pub(super) fn new(out: W) -> Self {
        Rebuilder { out, stream: None }
    }

    /// Applies `rec`; `plain` is the uncompressed data of a chunk (empty for other records).
    pub(super) fn apply(&mut self, rec: &Record, plain: &[u8]) -> io::Result<()> {
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

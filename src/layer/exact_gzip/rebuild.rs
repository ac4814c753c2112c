//! Export's side: replays the records over the layer's tar stream as it is written.

use std::io::{self, Write};

use super::PLAIN_LIMIT;
use super::record::{Rebuilder, Record};

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
    /// A writer replaying `records` (from [`super::ExactGzip::records`]) into `out`.
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

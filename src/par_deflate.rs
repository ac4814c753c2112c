//! Deflate on every core, pigz-style (through `gzp`): the input is cut into fixed blocks, each
//! block is compressed on a worker thread with the previous block's last 32 KiB as its
//! dictionary, and the results are written in order. Exported gzip layers ([`Gzip`]) and the
//! large file objects of archive repositories ([`RawDeflate`]) are made this way.
//!
//! Deterministic: the output depends on the input, the level and the block size alone, not on
//! the number of threads nor on how the input is cut into writes (flushes are swallowed: a
//! flush would end a block early). Memory is bounded by a few blocks per thread.

use std::io::{self, Write};

use bytes::Bytes;
use flate2::{Compress, FlushCompress, Status};
use gzp::par::compress::ParCompressBuilder;
use gzp::{Compression, FormatSpec, GzpError, ZWriter};

/// Input bytes per block (pigz's default). Fixed: it shapes the output.
pub const BLOCK: usize = 128 << 10;

/// The number of compressing threads: one per core.
pub fn threads() -> usize {
    std::thread::available_parallelism().map_or(1, |n| n.get())
}

/// One block of a stream: deflated after `dict` (the previous block's tail), ended with a
/// sync flush so the next block can follow, or as the final block when `is_last`.
fn encode_block(
    level: Compression,
    input: &[u8],
    dict: Option<&Bytes>,
    is_last: bool,
) -> Result<Vec<u8>, GzpError> {
    // A new compressor for every block: zlib-rs's output after `reset` and `set_dictionary`
    // depends on the blocks the compressor saw before, so it would depend on which thread
    // took the block (the setup costs about 1% of compressing 128 KiB).
    let mut z = Compress::new(level, false);
    if let Some(dict) = dict {
        z.set_dictionary(dict)?;
    }
    let flush = if is_last {
        FlushCompress::Finish
    } else {
        FlushCompress::Sync
    };
    let start = z.total_in();
    let mut out = Vec::with_capacity(input.len() + input.len() / 64 + 64);
    loop {
        let done = (z.total_in() - start) as usize;
        let status = z.compress_vec(&input[done..], &mut out, flush)?;
        // zlib has flushed everything once it stops short of the end of the buffer (and,
        // when finishing, says the stream ended).
        let all_in = (z.total_in() - start) as usize == input.len();
        if all_in && out.len() < out.capacity() && (!is_last || status == Status::StreamEnd) {
            break;
        }
        out.reserve(out.capacity().max(4096));
    }
    Ok(out)
}

/// A stream of `encode_block` blocks: one gzip member (gzp's header, mtime 0 and OS 255,
/// and CRC-32 trailer) when `GZIP`, else raw. gzp's own formats do not fit: its `RawDeflate`
/// never ends the stream (zlib's inflate, libostree's reader, call that truncated) and its
/// `Gzip` takes no dictionary unless gzp is built on a C zlib.
#[derive(Clone, Copy, Debug)]
pub struct Blocks<const GZIP: bool>;

/// A raw deflate stream, without header or trailer, that ends in a final block: the content
/// of a libostree archive object after its header.
pub type RawDeflate = Blocks<false>;

/// One gzip member.
pub type Gzip = Blocks<true>;

impl<const GZIP: bool> FormatSpec for Blocks<GZIP> {
    type C = gzp::check::Crc32;
    type Compressor = ();

    fn new() -> Self {
        Blocks
    }

    fn needs_dict(&self) -> bool {
        true
    }

    fn create_compressor(&self, _level: Compression) -> Result<(), GzpError> {
        Ok(())
    }

    fn encode(
        &self,
        input: &[u8],
        _: &mut (),
        level: Compression,
        dict: Option<&Bytes>,
        is_last: bool,
    ) -> Result<Vec<u8>, GzpError> {
        encode_block(level, input, dict, is_last)
    }

    fn header(&self, level: Compression) -> Vec<u8> {
        match GZIP {
            true => gzp::deflate::Gzip {}.header(level),
            false => Vec::new(),
        }
    }

    fn footer(&self, check: &Self::C) -> Vec<u8> {
        match GZIP {
            true => gzp::deflate::Gzip {}.footer(check),
            false => Vec::new(),
        }
    }
}

/// Passes writes on, swallows flushes (they would end a block early, so the output would
/// depend on where the writer happened to flush), and remembers whether a write failed: gzp
/// has then shut its pipeline down already, and must not be finished.
struct Guarded<W> {
    inner: W,
    failed: bool,
}

impl<W: Write> Write for Guarded<W> {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        let r = self.inner.write(buf);
        self.failed |= r.is_err();
        r
    }
    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

/// Runs `body` with a writer that deflates, in format `F` at `level` (1–9), into `out` on
/// `threads` threads, then ends the stream. The stream is ended even when `body` fails (so
/// no compressing thread is left behind); the first error wins.
///
/// # Errors
/// `body`'s error, or the compressor's (a failing `out`).
pub fn deflate_into<F: FormatSpec, W: Write + Send, T>(
    out: W,
    level: u32,
    threads: usize,
    body: impl FnOnce(&mut dyn Write) -> io::Result<T>,
) -> io::Result<T> {
    std::thread::scope(|s| {
        let mut z = ParCompressBuilder::<F>::new()
            .compression_level(Compression::new(level))
            .buffer_size(BLOCK)
            .and_then(|b| b.num_threads(threads.max(1)))
            .map_err(io::Error::other)?
            .from_borrowed_writer(out, s);
        let mut w = Guarded {
            inner: &mut z,
            failed: false,
        };
        let r = body(&mut w);
        if w.failed {
            // gzp has already torn its pipeline down and returned the writer thread's
            // error; its `finish` would panic (it unwraps the channels it dropped), and
            // dropping it now does nothing.
            drop(z);
            return r.and(Err(io::Error::other("compressor failed")));
        }
        let f = z.finish().map(drop).map_err(|e| match e {
            GzpError::Io(e) => e,
            e => io::Error::other(e),
        });
        let t = r?;
        f?;
        Ok(t)
    })
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use std::io::Read;

    fn sample(len: usize) -> Vec<u8> {
        (0..u32::MAX)
            .flat_map(|i| format!("line {i} {}\n", i.wrapping_mul(2_654_435_761)).into_bytes())
            .take(len)
            .collect()
    }

    /// Writes `data` to `w` in writes of `size` bytes, each flushed (output must not depend
    /// on either).
    pub(crate) fn write_in_pieces(w: &mut dyn Write, data: &[u8], size: usize) -> io::Result<()> {
        for part in data.chunks(size.max(1)) {
            w.write_all(part)?;
            w.flush()?;
        }
        Ok(())
    }

    fn raw(data: &[u8], write: usize, threads: usize) -> Vec<u8> {
        let mut out = Vec::new();
        deflate_into::<RawDeflate, _, _>(&mut out, 6, threads, |w| write_in_pieces(w, data, write))
            .unwrap();
        out
    }

    /// A raw stream inflates back to its input by zlib's own rules: the stream must end in
    /// a final block (libostree's reader reports anything else as truncated) with nothing
    /// after it; at every size around the block boundaries, for any thread count and write
    /// size, with the same bytes out.
    #[test]
    fn raw_streams_end_and_round_trip() {
        for len in [0, 1, 1000, BLOCK - 1, BLOCK, BLOCK + 1, 3 * BLOCK, 3 << 20] {
            let data = sample(len);
            let a = raw(&data, 4096, 2);
            assert!(
                raw(&data, 65_537, 1) == a,
                "{len}: depends on threads/writes"
            );
            assert!(raw(&data, 1000, 5) == a, "{len}: depends on threads/writes");
            let mut z = flate2::Decompress::new(false);
            let mut back = Vec::with_capacity(len + 1);
            let status = z
                .decompress_vec(&a, &mut back, flate2::FlushDecompress::Finish)
                .unwrap();
            assert_eq!(status, Status::StreamEnd, "{len}: the stream does not end");
            assert_eq!(z.total_in() as usize, a.len(), "{len}: bytes after the end");
            assert!(back == data, "{len}: does not round-trip");
            if len >= BLOCK {
                assert!(a.len() < len / 2, "{len}: did not compress");
            }
        }
    }

    /// Blocks are compressed with the previous block's tail as dictionary: data that repeats
    /// across a block boundary compresses as if it were one stream.
    #[test]
    fn blocks_see_the_previous_block() {
        let unit: Vec<u8> = sample(20_000);
        let data: Vec<u8> = unit.iter().copied().cycle().take(BLOCK * 4).collect();
        let ours = raw(&data, BLOCK, 2);
        let deflate = |d: &[u8]| {
            let mut z = flate2::write::DeflateEncoder::new(Vec::new(), flate2::Compression::new(6));
            z.write_all(d).unwrap();
            z.finish().unwrap().len()
        };
        // Without the dictionary each of the 3 later blocks would restart with its first
        // 20 KB as new data, costing about one compressed unit each.
        assert!(
            ours.len() < deflate(&data) + deflate(&unit),
            "{} bytes against {} as one stream: no dictionary",
            ours.len(),
            deflate(&data)
        );
        let mut back = Vec::new();
        flate2::read::DeflateDecoder::new(&ours[..])
            .read_to_end(&mut back)
            .unwrap();
        assert!(back == data);
    }
}

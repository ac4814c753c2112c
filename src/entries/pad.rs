//! Tolerance for tars that end early: [`BlockPad`] completes the last 512-byte block with zeros.
//!
//! umoci 0.4.7's `insert` writes layers whose last member lacks its padding and which have no
//! end-of-archive blocks; skopeo and umoci accept them, and so must we. The tar crate already
//! treats a clean end of stream between members as the end of the archive; the missing padding
//! is what it trips on. Padding only ever completes the current block: a stream cut inside a
//! member's data still fails (the tar reader sees a short entry), and the diff_id check covers
//! the bytes that really were there.

use std::io::{self, Read};

const BLOCK: u64 = 512;

/// Passes a stream through and, at its end, adds zeros up to the next 512-byte boundary.
#[derive(Debug)]
pub struct BlockPad<R> {
    inner: R,
    count: u64,
    pad_left: Option<u64>,
}

impl<R: Read> BlockPad<R> {
    /// Wraps `inner`.
    pub fn new(inner: R) -> Self {
        BlockPad {
            inner,
            count: 0,
            pad_left: None,
        }
    }

    /// The wrapped reader.
    pub fn into_inner(self) -> R {
        self.inner
    }
}

impl<R: Read> Read for BlockPad<R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        if let Some(left) = self.pad_left.as_mut() {
            let n = (*left).min(buf.len() as u64) as usize;
            buf[..n].fill(0);
            *left -= n as u64;
            return Ok(n);
        }
        let n = self.inner.read(buf)?;
        if n == 0 && !buf.is_empty() {
            self.pad_left = Some((BLOCK - self.count % BLOCK) % BLOCK);
            return self.read(buf);
        }
        self.count += n as u64;
        Ok(n)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pads_with_short_reads() {
        let mut out = Vec::new();
        let short = crate::blob::ShortReads {
            inner: &[1u8; 1000][..],
            step: 0,
        };
        BlockPad::new(short).read_to_end(&mut out).unwrap();
        assert_eq!(out.len(), 1024);
        assert_eq!(&out[..1000], &[1u8; 1000][..]);
    }

    #[test]
    fn pads_to_block() {
        let mut out = Vec::new();
        BlockPad::new(&[1u8; 700][..])
            .read_to_end(&mut out)
            .unwrap();
        assert_eq!(out.len(), 1024);
        assert!(out[700..].iter().all(|&b| b == 0));
        let mut out = Vec::new();
        BlockPad::new(&[1u8; 512][..])
            .read_to_end(&mut out)
            .unwrap();
        assert_eq!(out.len(), 512);
    }
}

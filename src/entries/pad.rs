//! Where a layer tar may end: [`BlockPad`] completes a member's missing padding, and turns
//! every other early end into an error.
//!
//! umoci 0.4.7's `insert` writes layers whose last member lacks its padding and which have no
//! end-of-archive blocks; skopeo and umoci accept them, and so must we. A tar may therefore
//! end:
//! - on a block boundary between members (no end-of-archive blocks): accepted;
//! - after a member's complete data, inside its padding: accepted, the padding is completed
//!   with zeros (the bytes that were there are all data, and the diff_id check covers them);
//! - inside a block of zeros after a member (a cut end-of-archive block): accepted, completed
//!   with zeros, which can only end the archive;
//! - anywhere else — inside a member's data, inside a header, inside a PAX or GNU long-name
//!   record, or after such a record with no member following it: a truncated layer, an error
//!   naming the entry. Missing data is never filled in.
//!
//! The layer stage tells the [`Gate`] where the data of each entry ends before reading it;
//! the reader checks the end of the stream against it.

use std::cell::Cell;
use std::io::{self, Read};
use std::rc::Rc;

const BLOCK: u64 = 512;

/// What the layer stage knows about the member being read, shared with its [`BlockPad`].
#[derive(Debug, Default)]
pub struct Gate {
    data_end: Cell<u64>,
    finished: Cell<bool>,
    eof_at: Cell<Option<u64>>,
}

impl Gate {
    /// The data of the entry whose header was just read ends at stream position `end`.
    pub fn set_data_end(&self, end: u64) {
        self.data_end.set(end);
    }

    /// The tar reader is done; what follows (end-of-archive blocks, trailing bytes) may end
    /// anywhere.
    pub fn finish(&self) {
        self.finished.set(true);
    }

    /// Where the stream ended, once it has: the position, and whether that is inside the data
    /// of the current entry (else in a header or extension record after it, if the tar reader
    /// fails).
    pub fn ended_at(&self) -> Option<(u64, bool)> {
        self.eof_at.get().map(|at| (at, at < self.data_end.get()))
    }

    /// The stream position where the current entry's data ends.
    pub fn data_end(&self) -> u64 {
        self.data_end.get()
    }
}

/// Passes a tar stream through; at its end, completes a member's padding or fails (see the
/// module documentation).
#[derive(Debug)]
pub struct BlockPad<R> {
    inner: R,
    count: u64,
    pad_left: Option<u64>,
    /// Whether the bytes since the last block boundary are all zeros.
    zeros_in_block: bool,
    gate: Rc<Gate>,
}

impl<R: Read> BlockPad<R> {
    /// Wraps `inner`; returns the reader and its gate.
    pub fn new(inner: R) -> (Self, Rc<Gate>) {
        let gate = Rc::new(Gate::default());
        let pad = BlockPad {
            inner,
            count: 0,
            pad_left: None,
            zeros_in_block: true,
            gate: gate.clone(),
        };
        (pad, gate)
    }

    /// The wrapped reader.
    pub fn into_inner(self) -> R {
        self.inner
    }

    /// Decides what the end of the stream at `self.count` means: padding to add, or an error.
    fn at_end(&mut self) -> io::Result<u64> {
        let (at, gate) = (self.count, &self.gate);
        let end = gate.data_end.get();
        let padded_end = end.div_ceil(BLOCK) * BLOCK;
        if gate.finished.get() {
            return Ok(0);
        }
        gate.eof_at.set(Some(at));
        if at >= end && (at % BLOCK == 0 || at < padded_end || self.zeros_in_block) {
            // between members, in the padding after complete data, or in an end-of-archive
            // block
            return Ok((BLOCK - at % BLOCK) % BLOCK);
        }
        let place = if at < end {
            format!("inside the entry's data, which ends at byte {end}")
        } else {
            "inside the header or extension record that follows the entry".to_string()
        };
        Err(io::Error::new(
            io::ErrorKind::UnexpectedEof,
            format!("the tar stream ends at byte {at}, {place}"),
        ))
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
            self.pad_left = Some(self.at_end()?);
            return self.read(buf);
        }
        // only the bytes after the last block boundary in this read matter
        let into_block = ((self.count + n as u64) % BLOCK) as usize;
        let (tail, restart) = if into_block <= n {
            (&buf[n - into_block..n], true)
        } else {
            (&buf[..n], false)
        };
        let zeros = tail.iter().all(|&b| b == 0);
        self.zeros_in_block = zeros && (restart || self.zeros_in_block);
        self.count += n as u64;
        Ok(n)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn read(data: &[u8], data_end: u64) -> io::Result<Vec<u8>> {
        let (mut pad, gate) = BlockPad::new(data);
        gate.set_data_end(data_end);
        let mut out = Vec::new();
        pad.read_to_end(&mut out).map(|_| out)
    }

    #[test]
    fn pads_with_short_reads() {
        let mut out = Vec::new();
        let short = crate::blob::ShortReads {
            inner: &[1u8; 1000][..],
            step: 0,
        };
        let (mut pad, gate) = BlockPad::new(short);
        gate.set_data_end(1000);
        pad.read_to_end(&mut out).unwrap();
        assert_eq!(out.len(), 1024);
        assert_eq!(&out[..1000], &[1u8; 1000][..]);
    }

    #[test]
    fn pads_only_after_complete_data() {
        let out = read(&[1u8; 700], 600).unwrap();
        assert_eq!(out.len(), 1024);
        assert!(out[700..].iter().all(|&b| b == 0));
        assert_eq!(read(&[1u8; 512], 512).unwrap().len(), 512);
        assert_eq!(read(&[1u8; 1024], 512).unwrap().len(), 1024);
        // data cut short, on a block boundary or not
        for (len, end) in [(700, 900), (512, 900), (1000, 1024)] {
            let e = read(&vec![1u8; len], end).unwrap_err();
            assert!(e.to_string().contains("inside the entry's data"), "{e}");
        }
        // a cut past the padding of the data: inside the next header, unless it is zeros
        let e = read(&[1u8; 1100], 600).unwrap_err();
        assert!(e.to_string().contains("inside the header"), "{e}");
        let mut cut_end_block = vec![1u8; 1024];
        cut_end_block.extend([0u8; 100]);
        assert_eq!(read(&cut_end_block, 600).unwrap().len(), 1536);
        cut_end_block.push(1);
        let e = read(&cut_end_block, 600).unwrap_err();
        assert!(e.to_string().contains("inside the header"), "{e}");
        let (mut pad, gate) = BlockPad::new(&[1u8; 1100][..]);
        gate.set_data_end(600);
        gate.finish();
        assert_eq!(pad.read_to_end(&mut Vec::new()).unwrap(), 1100);
    }
}

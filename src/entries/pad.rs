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
//!
//! After the end-of-archive marker, only zeros may follow ([`drain_zeros`]): the tar reader
//! stops at the first zero block, where GNU tar reads on (warning of "a lone zero block") and
//! Go's archive/tar fails, so an entry after it would be in one tool's tree and not another's.

use std::cell::Cell;
use std::io::{self, Read};
use std::rc::Rc;

use crate::error::LayerError;

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

/// Reads what is left of the stream after the tar reader stopped at the end-of-archive
/// marker (so that digests computed below see every byte), streaming, without keeping it.
///
/// # Errors
/// [`LayerError::DataAfterEnd`] at the first byte that is not zero, naming the entry whose
/// header starts there if one does; [`LayerError::Read`] when reading fails.
pub fn drain_zeros<R: Read>(mut pad: BlockPad<R>) -> Result<(), LayerError> {
    let mut buf = vec![0u8; 64 << 10];
    loop {
        let base = pad.count;
        // Full buffers (but at the end): a block that starts in one is whole in it.
        let mut n = 0;
        while n < buf.len() {
            match pad.read(&mut buf[n..]) {
                Ok(0) => break,
                Ok(k) => n += k,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) => return Err(LayerError::Read(e)),
            }
        }
        if n == 0 {
            return Ok(());
        }
        if let Some(i) = buf[..n].iter().position(|&b| b != 0) {
            let at = base + i as u64;
            let block = (at - at % BLOCK)
                .checked_sub(base)
                .and_then(|from| buf[..n].get(from as usize..from as usize + BLOCK as usize));
            return Err(LayerError::DataAfterEnd {
                at,
                header: block.and_then(header_name),
            });
        }
    }
}

/// The name in `block` if it is a tar header (its checksum matches).
fn header_name(block: &[u8]) -> Option<String> {
    let sum: u64 = block
        .iter()
        .enumerate()
        .map(|(i, &b)| u64::from(if (148..156).contains(&i) { b' ' } else { b }))
        .sum();
    let h = tar::Header::from_byte_slice(block);
    (u64::from(h.cksum().ok()?) == sum).then(|| super::path::lossy(&h.path_bytes()))
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

    /// What follows the end-of-archive marker: zeros, of any length, are fine; anything else
    /// is an error at its position, naming the entry whose header starts there.
    #[test]
    fn only_zeros_after_the_end() {
        let drain = |data: &[u8], read: usize| {
            let (mut pad, gate) = BlockPad::new(data);
            io::copy(&mut (&mut pad).take(read as u64), &mut io::sink()).unwrap();
            gate.finish();
            drain_zeros(pad)
        };
        let mut tar = vec![0u8; 1024];
        let mut h = tar::Header::new_ustar();
        h.set_path("hidden").unwrap();
        h.set_cksum();
        tar.extend_from_slice(h.as_bytes());
        tar.extend([0u8; 1024]);
        drain(&tar[..1024], 512).unwrap();
        drain(&[0u8; 200_000], 512).unwrap();
        drain(&[], 0).unwrap();
        match drain(&tar, 512) {
            Err(LayerError::DataAfterEnd { at, header }) => {
                assert_eq!(at, 1024);
                assert_eq!(header.as_deref(), Some("hidden"));
            }
            other => panic!("{other:?}"),
        }
        // far into the stream, across buffers, and not a header
        let mut late = vec![0u8; 150_001];
        late.push(7);
        match drain(&late, 512) {
            Err(
                e @ LayerError::DataAfterEnd {
                    at: 150_001,
                    header: None,
                },
            ) => {
                let e = e.to_string();
                assert!(
                    e.contains("after the end-of-archive marker at byte 150001"),
                    "{e}"
                );
            }
            other => panic!("{other:?}"),
        }
    }
}

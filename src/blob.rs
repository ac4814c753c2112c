//! Blob streams that verify themselves: [`VerifiedReader`] counts and hashes every byte it
//! passes on and fails the read that reaches the end if the size or the digest is wrong.
//!
//! It also fails as soon as more bytes arrive than the descriptor promised, so a blob that never
//! ends cannot make an import run forever.

use std::io::{self, Read};

use crate::digest::{Digest, Hasher};

/// A readable blob stream, not yet verified; `Send` so that decompression can run on its own
/// thread.
pub type BlobReader = Box<dyn Read + Send>;

/// A reader that checks a blob's size and digest while it is read.
///
/// The check happens when the inner reader reports end of file: that `read` call returns an
/// [`io::ErrorKind::InvalidData`] error instead of `Ok(0)` when anything is off. Callers must read
/// to the end (the import pipeline always drains blobs).
#[derive(Debug)]
pub struct VerifiedReader<R> {
    inner: R,
    hasher: Option<Hasher>,
    expected: Digest,
    expected_size: u64,
    count: u64,
}

impl<R: Read> VerifiedReader<R> {
    /// Wraps `inner`, which must yield exactly `size` bytes hashing to `digest`.
    ///
    /// # Errors
    /// [`crate::error::Error::InvalidDigest`] when the digest's algorithm cannot be verified.
    pub fn new(inner: R, digest: &Digest, size: u64) -> crate::error::Result<Self> {
        Ok(VerifiedReader {
            inner,
            hasher: Some(digest.hasher()?),
            expected: digest.clone(),
            expected_size: size,
            count: 0,
        })
    }

    fn mismatch(&self, what: String) -> io::Error {
        io::Error::new(
            io::ErrorKind::InvalidData,
            BlobMismatch(format!("blob {}: {what}", self.expected)),
        )
    }
}

impl<R: Read> Read for VerifiedReader<R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let Some(hasher) = self.hasher.as_mut() else {
            return Ok(0);
        };
        let n = match self.inner.read(buf) {
            Ok(n) => n,
            Err(e) if e.kind() == io::ErrorKind::UnexpectedEof => 0,
            Err(e) => return Err(e),
        };
        if n > 0 {
            hasher.update(&buf[..n]);
            self.count += n as u64;
            if self.count > self.expected_size {
                return Err(self.mismatch(format!(
                    "size mismatch: descriptor says {} bytes, blob is longer",
                    self.expected_size
                )));
            }
            return Ok(n);
        }
        if self.count != self.expected_size {
            return Err(self.mismatch(format!(
                "size mismatch: descriptor says {} bytes, blob has {} (truncated?)",
                self.expected_size, self.count
            )));
        }
        let found = self.hasher.take().expect("checked above").finish();
        if found != self.expected {
            return Err(self.mismatch(format!("digest mismatch: content hashes to {found}")));
        }
        Ok(0)
    }
}

/// The error inside the [`io::Error`] a [`VerifiedReader`] returns when a blob does not match
/// its descriptor; lets later stages tell a bad blob from a bad stream inside a good blob.
#[derive(Debug)]
pub struct BlobMismatch(pub String);

impl std::fmt::Display for BlobMismatch {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for BlobMismatch {}

/// Whether an I/O error is a [`BlobMismatch`].
pub fn is_mismatch(e: &io::Error) -> bool {
    e.get_ref().is_some_and(|inner| inner.is::<BlobMismatch>())
}

/// A writer that hashes and counts what passes through, for blobs and diff_ids being written.
#[derive(Debug)]
pub struct HashingWriter<W> {
    /// Where the bytes go.
    pub inner: W,
    /// Hashes every byte written.
    pub hasher: Hasher,
    /// Bytes written so far.
    pub count: u64,
}

impl<W: io::Write> HashingWriter<W> {
    /// Wraps `inner`, hashing with `hasher`.
    pub fn new(inner: W, hasher: Hasher) -> Self {
        HashingWriter {
            inner,
            hasher,
            count: 0,
        }
    }
}

impl<W: io::Write> io::Write for HashingWriter<W> {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        let n = self.inner.write(buf)?;
        self.hasher.update(&buf[..n]);
        self.count += n as u64;
        Ok(n)
    }
    fn flush(&mut self) -> io::Result<()> {
        self.inner.flush()
    }
}

/// Reads a whole small blob (manifest, config, index) into memory, verifying it.
///
/// # Errors
/// An [`io::Error`] when reading fails, the blob is larger than `limit`, or it does not match.
pub fn read_verified(
    inner: impl Read,
    digest: &Digest,
    size: u64,
    limit: u64,
) -> io::Result<Vec<u8>> {
    if size > limit {
        return Err(io::Error::new(
            io::ErrorKind::InvalidData,
            format!(
                "blob {digest}: {size} bytes is more than the {limit} bytes allowed for metadata"
            ),
        ));
    }
    let mut r = VerifiedReader::new(inner, digest, size).map_err(io::Error::other)?;
    // The descriptor's size is a claim: reserve no more than a MiB for it up front (with
    // `--max-metadata-size` at its largest, a huge claimed size would abort the allocation).
    let mut out = Vec::with_capacity(size.min(1 << 20) as usize);
    r.read_to_end(&mut out)?;
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn check(data: &[u8], digest: &Digest, size: u64) -> io::Result<Vec<u8>> {
        let mut out = Vec::new();
        VerifiedReader::new(data, digest, size)
            .unwrap()
            .read_to_end(&mut out)?;
        Ok(out)
    }

    #[test]
    fn accepts_matching_blob() {
        let d = Digest::sha256_of(b"hello");
        assert_eq!(check(b"hello", &d, 5).unwrap(), b"hello");
    }

    #[test]
    fn rejects_wrong_digest_size_and_overlong() {
        let d = Digest::sha256_of(b"hello");
        let e = check(b"hellp", &d, 5).unwrap_err().to_string();
        assert!(e.contains("digest mismatch"), "{e}");
        let e = check(b"hell", &d, 5).unwrap_err().to_string();
        assert!(e.contains("size mismatch"), "{e}");
        let e = check(b"hello!", &d, 5).unwrap_err().to_string();
        assert!(e.contains("longer"), "{e}");
    }
}

/// Test support: a reader that returns at most a few bytes per call, as pipes and network
/// streams do, to shake out code that assumes full reads.
#[cfg(test)]
pub(crate) struct ShortReads<R> {
    pub inner: R,
    pub step: usize,
}

#[cfg(test)]
impl<R: Read> Read for ShortReads<R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        self.step = self.step % 7 + 1;
        let n = buf.len().min(self.step);
        self.inner.read(&mut buf[..n])
    }
}

#[cfg(test)]
mod short_read_tests {
    use super::*;

    #[test]
    fn verified_reader_with_short_reads() {
        let data: Vec<u8> = (0..10_000u32).map(|i| i as u8).collect();
        let d = Digest::sha256_of(&data);
        let mut out = Vec::new();
        VerifiedReader::new(
            ShortReads {
                inner: &data[..],
                step: 0,
            },
            &d,
            data.len() as u64,
        )
        .unwrap()
        .read_to_end(&mut out)
        .unwrap();
        assert_eq!(out, data);
    }
}

//! Is a layer blob a tar? The first 512 bytes after decompression are looked at (a tar header
//! has a valid checksum), then handed back in front of the rest of the blob, so the blob is
//! still read once, as a stream.
//!
//! ORAS pushes a raw file under `application/vnd.oci.image.layer.v1.tar`; tools label gzip
//! tarballs `.tar`; so neither the media type nor the compression magic tells.

use std::io::{self, BufReader, Cursor, Read};

use crate::blob::BlobReader;
use crate::decompress::{Compression, decompress};

/// Compressed bytes read to find the first 512 tar bytes, at most (a gzip header may carry
/// extra fields and names; past this the blob is taken for no tar).
const MAX_PEEK: usize = 16 << 20;
/// The size of a tar header block.
const BLOCK: usize = 512;

/// What the start of a blob says.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Head {
    /// A tar header with a valid checksum, or the zero block that ends an (empty) archive.
    Tar,
    /// 512 bytes that are no tar header.
    NotTar,
    /// Fewer than 512 bytes (all zero when `zero`): an empty tar, a truncated one or a small
    /// file.
    Short {
        /// Whether every byte there is is zero.
        zero: bool,
    },
    /// The compressed stream could not be decoded that far.
    Undecodable,
}

impl Head {
    /// Whether the blob is to be read as a tar when its media type does not insist: a header,
    /// or an empty archive.
    pub fn is_tar(self) -> bool {
        matches!(self, Head::Tar | Head::Short { zero: true })
    }
}

/// Records what is read through it, up to [`MAX_PEEK`] bytes.
struct Recorder<R> {
    inner: R,
    seen: Vec<u8>,
}

impl<R: Read> Read for Recorder<R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        if self.seen.len() >= MAX_PEEK {
            return Err(io::Error::other("no tar header in the first bytes"));
        }
        let n = self.inner.read(buf)?;
        self.seen.extend_from_slice(&buf[..n]);
        Ok(n)
    }
}

/// Looks at the start of `blob`; returns what it is, how it is compressed, and the whole blob
/// again, to be read from its first byte.
pub fn sniff(blob: BlobReader) -> (Head, Compression, BlobReader) {
    let mut rec = Recorder {
        inner: blob,
        seen: Vec::new(),
    };
    let head = {
        let mut block = Vec::with_capacity(BLOCK);
        let read = decompress(BufReader::with_capacity(8 << 10, &mut rec))
            .and_then(|d| d.take(BLOCK as u64).read_to_end(&mut block));
        match read {
            Err(_) => Head::Undecodable,
            Ok(_) if block.len() < BLOCK => Head::Short {
                zero: block.iter().all(|&b| b == 0),
            },
            Ok(_) if is_tar_header(&block) => Head::Tar,
            Ok(_) => Head::NotTar,
        }
    };
    let Recorder { inner, seen } = rec;
    let compression = Compression::sniff(&seen);
    (head, compression, Box::new(Cursor::new(seen).chain(inner)))
}

/// Whether `block` (512 bytes) is a tar header: its checksum field matches the sum of its
/// bytes (unsigned, or signed as some old tars wrote it), or it is the zero block that ends an
/// archive.
pub fn is_tar_header(block: &[u8]) -> bool {
    if block.len() != BLOCK {
        return false;
    }
    if block.iter().all(|&b| b == 0) {
        return true;
    }
    let field = &block[148..156];
    let digits: String = field
        .iter()
        .map(|&b| b as char)
        .skip_while(|c| *c == ' ')
        .take_while(|c| c.is_digit(8))
        .collect();
    let Ok(stored) = i64::from_str_radix(&digits, 8) else {
        return false;
    };
    let (mut unsigned, mut signed) = (0i64, 0i64);
    for (i, &b) in block.iter().enumerate() {
        let b = if (148..156).contains(&i) { b' ' } else { b };
        unsigned += i64::from(b);
        signed += i64::from(b as i8);
    }
    stored == unsigned || stored == signed
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tar(name: &str, data: &[u8]) -> Vec<u8> {
        let mut b = tar::Builder::new(Vec::new());
        let mut h = tar::Header::new_ustar();
        h.set_size(data.len() as u64);
        h.set_mode(0o644);
        h.set_cksum();
        b.append_data(&mut h, name, data).unwrap();
        b.into_inner().unwrap()
    }

    fn gzip(data: &[u8]) -> Vec<u8> {
        use std::io::Write;
        let mut e = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
        e.write_all(data).unwrap();
        e.finish().unwrap()
    }

    fn check(blob: Vec<u8>, want: Head) {
        let (head, _, mut r) = sniff(Box::new(Cursor::new(blob.clone())));
        assert_eq!(head, want);
        let mut back = Vec::new();
        r.read_to_end(&mut back).unwrap();
        assert_eq!(back, blob, "the blob is handed back whole");
    }

    #[test]
    fn tells_tars_from_files() {
        let t = tar("a/b", b"hello");
        check(t.clone(), Head::Tar);
        check(gzip(&t), Head::Tar);
        check(zstd::encode_all(&t[..], 1).unwrap(), Head::Tar);
        check(vec![0; 1024], Head::Tar);
        check(Vec::new(), Head::Short { zero: true });
        check(b"hello".to_vec(), Head::Short { zero: false });
        check(vec![b'x'; 4096], Head::NotTar);
        check(gzip(&[b'x'; 4096]), Head::NotTar);
        // gzip magic, then garbage
        check(
            vec![0x1f, 0x8b, 8, 0, 1, 2, 3, 4, 5, 6, 7, 8, 9],
            Head::Undecodable,
        );
        // a tar header with one byte changed
        let mut bad = t;
        bad[0] ^= 1;
        check(bad, Head::NotTar);
    }
}

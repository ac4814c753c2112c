//! Layer decompression: gzip (every member), zstd (every frame, skippable frames too) or none.
//!
//! The compression is taken from the stream's magic bytes, not trusted from the media type:
//! registries and tools in the wild label uncompressed layers `tar.gzip` and the reverse.

use std::io::{self, BufRead, Read};

/// How a layer blob is compressed.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum Compression {
    /// A plain tar stream.
    None,
    /// gzip, possibly several members (pigz, some registries).
    Gzip,
    /// zstd, possibly several frames and skippable frames (zstd:chunked).
    Zstd,
}

impl Compression {
    /// Guesses the compression from the first bytes of a stream.
    pub fn sniff(head: &[u8]) -> Compression {
        match head {
            [0x1f, 0x8b, ..] => Compression::Gzip,
            [0x28, 0xb5, 0x2f, 0xfd, ..] => Compression::Zstd,
            // skippable frames: magic 0x184D2A50..=0x184D2A5F, little endian
            [b0, 0x2a, 0x4d, 0x18, ..] if b0 & 0xf0 == 0x50 => Compression::Zstd,
            _ => Compression::None,
        }
    }

    /// The compression a layer media type names (`+gzip`, `.gzip`, `+zstd`), if any.
    pub fn from_media_type(media_type: &str) -> Compression {
        if media_type.ends_with("gzip") {
            Compression::Gzip
        } else if media_type.ends_with("zstd") {
            Compression::Zstd
        } else {
            Compression::None
        }
    }
}

/// Wraps `input` in the decoder its magic bytes call for.
///
/// # Errors
/// Reading the first bytes, or setting up the zstd decoder, failed.
pub fn decompress<'a, R: BufRead + Send + 'a>(
    mut input: R,
) -> io::Result<Box<dyn Read + Send + 'a>> {
    // One fill_buf() may hold a single byte (pipes, sockets): read the magic fully, then put
    // it back in front of the stream.
    let mut head = Vec::with_capacity(4);
    (&mut input).take(4).read_to_end(&mut head)?;
    let compression = Compression::sniff(&head);
    let input = io::Cursor::new(head).chain(input);
    Ok(match compression {
        Compression::Gzip => Box::new(flate2::bufread::MultiGzDecoder::new(input)),
        Compression::Zstd => Box::new(zstd::stream::read::Decoder::with_buffer(input)?),
        Compression::None => Box::new(input),
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Write;

    fn roundtrip(data: &[u8]) -> Vec<u8> {
        let mut out = Vec::new();
        decompress(io::BufReader::new(data))
            .unwrap()
            .read_to_end(&mut out)
            .unwrap();
        out
    }

    #[test]
    fn gzip_multi_member() {
        let mut blob = Vec::new();
        for part in [&b"first "[..], b"second"] {
            let mut e = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
            e.write_all(part).unwrap();
            blob.extend(e.finish().unwrap());
        }
        assert_eq!(roundtrip(&blob), b"first second");
    }

    #[test]
    fn zstd_frames_and_skippable() {
        let mut blob = vec![0x50, 0x2a, 0x4d, 0x18, 3, 0, 0, 0, 1, 2, 3];
        blob.extend(zstd::encode_all(&b"one "[..], 1).unwrap());
        blob.extend([0x5f, 0x2a, 0x4d, 0x18, 0, 0, 0, 0]);
        blob.extend(zstd::encode_all(&b"two"[..], 3).unwrap());
        assert_eq!(roundtrip(&blob), b"one two");
    }

    /// Every framing decodes the same when the blob arrives a few bytes at a time.
    #[test]
    fn short_reads() {
        let data: Vec<u8> = (0..50_000u32).flat_map(|i| i.to_le_bytes()).collect();
        let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
        gz.write_all(&data).unwrap();
        let gz = gz.finish().unwrap();
        let zs = zstd::encode_all(&data[..], 1).unwrap();
        for blob in [gz, zs, data.clone()] {
            let short = crate::blob::ShortReads {
                inner: &blob[..],
                step: 0,
            };
            let mut out = Vec::new();
            decompress(io::BufReader::with_capacity(16, short))
                .unwrap()
                .read_to_end(&mut out)
                .unwrap();
            assert!(
                out == data,
                "short reads changed the decoded stream: {} vs {} bytes, head {:?}",
                out.len(),
                data.len(),
                &blob[..4]
            );
        }
    }

    #[test]
    fn plain_passes_through() {
        assert_eq!(roundtrip(b"plain tar bytes"), b"plain tar bytes");
        assert_eq!(roundtrip(b""), b"");
    }
}

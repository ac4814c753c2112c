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
        Compression::Gzip => Box::new(GzipMembers::new(input)),
        Compression::Zstd => Box::new(zstd::stream::read::Decoder::with_buffer(input)?),
        Compression::None => Box::new(input),
    })
}

/// A gzip stream of one or more members, inflated without the CRC-32 check.
///
/// Every layer blob is verified against its sha256 digest (and the output against the
/// diff_id), which a CRC cannot add to; skipping it saves a tenth of the decompressing
/// thread's time. The member framing is still checked: header magic, method, flags, and each
/// trailer's ISIZE against the bytes inflated.
struct GzipMembers<R> {
    state: Option<Member<R>>,
}

enum Member<R> {
    /// Before a member header (or at the end of the stream).
    Between(R),
    /// Inflating a member's DEFLATE data.
    Body(flate2::bufread::DeflateDecoder<R>, u32),
}

fn bad_gzip(what: &str) -> io::Error {
    io::Error::new(
        io::ErrorKind::InvalidData,
        format!("invalid gzip stream: {what}"),
    )
}

/// Reads a gzip member header (RFC 1952 §2.3); `false` at a clean end of stream.
fn read_member_header<R: BufRead>(r: &mut R) -> io::Result<bool> {
    if r.fill_buf()?.is_empty() {
        return Ok(false);
    }
    let mut head = Vec::with_capacity(10);
    r.take(10).read_to_end(&mut head)?;
    if !head.starts_with(&[0x1f, 0x8b]) {
        return Err(bad_gzip("no gzip magic after a member (trailing garbage)"));
    }
    if head.len() < 10 {
        return Err(bad_gzip("truncated member header"));
    }
    if head[2] != 8 {
        return Err(bad_gzip("compression method is not DEFLATE"));
    }
    let flags = head[3];
    if flags & 0xe0 != 0 {
        return Err(bad_gzip("reserved header flags set"));
    }
    let truncated = |_| bad_gzip("truncated member header");
    if flags & 0x04 != 0 {
        let mut len = [0u8; 2];
        r.read_exact(&mut len).map_err(truncated)?;
        let len = u64::from(u16::from_le_bytes(len));
        if io::copy(&mut r.take(len), &mut io::sink())? != len {
            return Err(bad_gzip("truncated extra field"));
        }
    }
    for flag in [0x08, 0x10] {
        if flags & flag != 0 {
            let mut skipped = Vec::new();
            r.read_until(0, &mut skipped)?;
            if skipped.last() != Some(&0) {
                return Err(bad_gzip("unterminated file name or comment"));
            }
        }
    }
    if flags & 0x02 != 0 {
        let mut crc16 = [0u8; 2];
        r.read_exact(&mut crc16).map_err(truncated)?;
    }
    Ok(true)
}

impl<R: BufRead> GzipMembers<R> {
    fn new(r: R) -> Self {
        GzipMembers {
            state: Some(Member::Between(r)),
        }
    }
}

impl<R: BufRead> Read for GzipMembers<R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        if buf.is_empty() {
            return Ok(0);
        }
        loop {
            match self.state.take() {
                None => return Ok(0),
                Some(Member::Between(mut r)) => {
                    if !read_member_header(&mut r)? {
                        return Ok(0);
                    }
                    let d = flate2::bufread::DeflateDecoder::new(r);
                    self.state = Some(Member::Body(d, 0));
                }
                Some(Member::Body(mut d, size)) => {
                    let n = d.read(buf)?;
                    if n > 0 {
                        self.state = Some(Member::Body(d, size.wrapping_add(n as u32)));
                        return Ok(n);
                    }
                    let mut r = d.into_inner();
                    let mut trailer = [0u8; 8];
                    r.read_exact(&mut trailer)
                        .map_err(|_| bad_gzip("truncated member trailer"))?;
                    let isize =
                        u32::from_le_bytes([trailer[4], trailer[5], trailer[6], trailer[7]]);
                    if isize != size {
                        return Err(bad_gzip("member length does not match its trailer"));
                    }
                    self.state = Some(Member::Between(r));
                }
            }
        }
    }
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

    fn read_all(blob: &[u8]) -> io::Result<Vec<u8>> {
        let mut out = Vec::new();
        decompress(io::BufReader::new(blob))?.read_to_end(&mut out)?;
        Ok(out)
    }

    /// Optional header fields (extra, name, comment, header CRC) are skipped; the trailer's
    /// length is checked; truncation and trailing garbage are errors.
    #[test]
    fn gzip_framing() {
        let mut e = flate2::GzBuilder::new()
            .extra(vec![1, 2, 3])
            .filename("layer.tar")
            .comment("made by a test")
            .write(Vec::new(), flate2::Compression::default());
        e.write_all(b"payload").unwrap();
        let mut blob = e.finish().unwrap();
        // FHCRC: set the flag and insert two bytes before the DEFLATE data.
        let mut with_hcrc = blob.clone();
        with_hcrc[3] |= 0x02;
        let nul = with_hcrc
            .iter()
            .enumerate()
            .skip(10 + 2 + 3)
            .filter(|(_, b)| **b == 0)
            .nth(1)
            .map(|(i, _)| i)
            .unwrap();
        with_hcrc.splice(nul + 1..nul + 1, [0xaa, 0xbb]);
        assert_eq!(read_all(&blob).unwrap(), b"payload");
        assert_eq!(read_all(&with_hcrc).unwrap(), b"payload");

        let n = blob.len();
        let mut bad_isize = blob.clone();
        bad_isize[n - 4] ^= 1;
        let err = read_all(&bad_isize).unwrap_err().to_string();
        assert!(err.contains("trailer"), "{err}");
        let err = read_all(&blob[..n - 3]).unwrap_err().to_string();
        assert!(err.contains("truncated member trailer"), "{err}");
        let err = read_all(&blob[..n / 2]).unwrap_err().to_string();
        assert!(err.contains("gzip") || err.contains("deflate"), "{err}");
        blob.extend(b"junk");
        let err = read_all(&blob).unwrap_err().to_string();
        assert!(err.contains("trailing garbage"), "{err}");
    }

    /// Fuzz target: mutated gzip (several members, every optional header field) and zstd
    /// (skippable frames, several frames) blobs decode or fail with an error; never a panic.
    /// Output is capped: a mutated blob may be a small bomb.
    mod fuzz {
        use super::*;
        use crate::testing::{fuzz_cases, mutated};
        use proptest::prelude::*;

        fn seeds() -> Vec<Vec<u8>> {
            let data: Vec<u8> = (0..3000u32).flat_map(|i| (i % 251).to_le_bytes()).collect();
            let mut gz = Vec::new();
            for (i, part) in data.chunks(5000).enumerate() {
                let mut e = flate2::GzBuilder::new()
                    .extra(vec![i as u8; 3])
                    .filename("f")
                    .comment("c")
                    .write(Vec::new(), flate2::Compression::new(i as u32 % 10));
                e.write_all(part).unwrap();
                gz.extend(e.finish().unwrap());
            }
            let mut zs = vec![0x50, 0x2a, 0x4d, 0x18, 3, 0, 0, 0, 1, 2, 3];
            for part in data.chunks(5000) {
                zs.extend(zstd::encode_all(part, 3).unwrap());
            }
            vec![gz, zs]
        }

        proptest! {
            #![proptest_config(ProptestConfig::with_cases(fuzz_cases(2000)))]
            #[test]
            fn mutated_blobs_never_panic(
                blob in prop::sample::select(seeds()).prop_flat_map(mutated),
                step in 0usize..3,
            ) {
                let short = crate::blob::ShortReads { inner: &blob[..], step };
                if let Ok(d) = decompress(io::BufReader::with_capacity(64, short)) {
                    let _ = io::copy(&mut d.take(64 << 20), &mut io::sink());
                }
            }
        }
    }

    #[test]
    fn plain_passes_through() {
        assert_eq!(roundtrip(b"plain tar bytes"), b"plain tar bytes");
        assert_eq!(roundtrip(b""), b"");
    }
}

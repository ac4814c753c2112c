//! Exact gzip: what it takes to rebuild an imported gzip layer blob bit for bit from its
//! uncompressed tar (feature `exact-gzip`).
//!
//! A gzip blob is members of header, DEFLATE stream and 8-byte trailer. Headers and trailers are
//! kept verbatim. The DEFLATE streams are analysed with the [`preflate_rs`] crate, which finds
//! the parameters of the compressor that wrote them and records, for each piece of the stream,
//! the few decisions those parameters do not predict ("corrections"); replaying the corrections
//! over the same uncompressed bytes gives the same DEFLATE bytes back. This works for zlib-based
//! compressors (gzip, pigz) at levels 1–6 and for small streams of any origin; it does not for
//! zlib level 9, Go's `compress/flate` and `pgzip` (docker, BuildKit, skopeo, umoci), libdeflate
//! and miniz/flate2 output (see `DESIGN.md` §6). Where it does not, the layer simply has no
//! exact data and export re-compresses it.
//!
//! [`Analyser`] runs during import on the compressed bytes, in 1 MiB pieces (memory stays
//! flat), and rebuilds the blob from what it recorded right away, through the same
//! rebuilder export uses, hashing the result: data that does not give back the blob's
//! digest is dropped. [`ExactGzipWriter`] rebuilds the blob at export from the tar stream.
//!
//! The records are kept in the layer commit's metadata ([`crate::meta::LAYER_EXACT_GZIP`]) with
//! their format: this module's [`VERSION`] and the preflate-rs version ([`PREFLATE_VERSION`]),
//! since corrections replay only with the version that made them. They are stored as they are,
//! not zstd-compressed like the tar-split: the corrections are already entropy-coded (zstd -19
//! took 3% off the 21 KB of records of a 64 MB `gzip -6` layer).
//!
//! Record format (version [`VERSION`]), concatenated: `b'R'`, u32 BE length, bytes copied
//! verbatim (gzip headers and trailers); `b'S'`: a new DEFLATE stream starts; `b'C'`, u64 BE
//! uncompressed length, u64 BE compressed length, u32 BE length, corrections: the next piece of
//! the current DEFLATE stream, rebuilt from that many bytes of the tar stream.

//!
//! The parts: `record` (the format, and the rebuilder both sides replay it with), `analyse`
//! (import) and `rebuild` (export).

mod analyse;
mod rebuild;
mod record;

pub use analyse::{Analyser, Checked, Checker, ExactGzip};
pub use rebuild::ExactGzipWriter;

/// Version of the record format, stored beside it.
pub const VERSION: u32 = 1;

/// The preflate-rs version the records are made with (pinned in `Cargo.toml`; a unit test
/// checks the two agree).
pub const PREFLATE_VERSION: &str = "0.7.6";

/// Compressed bytes handed to preflate at a time.
pub(super) const CHUNK: usize = 1 << 20;
/// Uncompressed bytes preflate may produce from one piece before it stops at a block boundary.
pub(super) const PLAIN_LIMIT: usize = 16 << 20;
/// A DEFLATE block larger than this (compressed) is not analysed: memory stays bounded.
pub(super) const MAX_PENDING: usize = 64 << 20;
/// preflate counts stream positions in 32 bits: longer members are not analysed.
pub(super) const MEMBER_LIMIT: u64 = (1 << 31) - (PLAIN_LIMIT as u64) * 2;
/// Streams whose compressor searched longer match chains than this (as preflate-rs estimates
/// them from the first piece) are refused at once: zlib level 9 (4096). Its analysis costs
/// several times a level-6 one and on real layers often fails late: `gzip -9` of the Debian
/// base tar failed (`PredictionFailure`) after 67 s, against 20 s for a successful `gzip -6`
/// one. Level 8 uses 1024; flate2 (zlib-rs) level 6 output is estimated at 600–750.
/// Blobs up to [`SMALL_BLOB`] are analysed whatever their chains (preflate-rs' own cap):
/// that costs a fraction of a second, and small layers of any origin often work (umoci's
/// 288-byte whiteout layer in the benchmark needs chains of 1721).
pub(super) const MAX_CHAIN: u32 = 1024;
/// See [`MAX_CHAIN`].
pub(super) const SMALL_BLOB: u64 = 256 << 10;
/// preflate-rs' own cap on chain length (its default).
pub(super) const MAX_CHAIN_SMALL: u32 = 4096;
/// Blobs of more gzip members than this are not analysed (each member starts a new analysis).
pub(super) const MAX_MEMBERS: usize = 1024;
/// gzip headers longer than this (file name, comment, extra field) are not analysed.
pub(super) const MAX_HEADER: usize = 1 << 20;

/// Why a blob has no exact data. Not an import error: the layer imports, export re-compresses.
#[derive(Debug, thiserror::Error)]
#[error("{0}")]
pub struct NotExact(pub String);

pub(super) fn not_exact(why: impl Into<String>) -> NotExact {
    NotExact(why.into())
}

#[cfg(test)]
mod tests {
    use super::record::Record;
    use super::*;
    use crate::digest::Digest;
    use std::io::{self, Write};

    fn gzip(data: &[u8], level: u32) -> Vec<u8> {
        let mut e = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::new(level));
        e.write_all(data).unwrap();
        e.finish().unwrap()
    }

    fn analyse(blob: &[u8], piece: usize) -> Result<ExactGzip, NotExact> {
        let size = blob.len() as u64;
        let mut a = Analyser::new(&Digest::sha256_of(blob), size).unwrap();
        for p in blob.chunks(piece) {
            a.feed(p)?;
        }
        let inline = a.finish();
        // the same on two threads
        let (mut a, checker, rx) =
            Analyser::with_check_thread(&Digest::sha256_of(blob), size).unwrap();
        let (threaded, size) = std::thread::scope(|s| {
            let c = s.spawn(|| checker.run(rx));
            // the analyser must be gone (dropping its sender) before the checker is joined
            let r = (move || {
                for p in blob.chunks(piece) {
                    a.feed(p)?;
                }
                a.finish()
            })();
            (r, c.join().unwrap())
        });
        match (&inline, threaded, size) {
            (Ok(i), Ok(t), Ok(n)) => {
                assert_eq!((&i.records, n), (&t.records, blob.len() as u64));
            }
            (Err(_), Ok(_), Ok(_)) => panic!("only the threaded check passed"),
            _ => {}
        }
        inline
    }

    fn rebuild(records: &[u8], plain: &[u8], piece: usize) -> io::Result<Vec<u8>> {
        let mut w = ExactGzipWriter::new(records, Vec::new());
        for p in plain.chunks(piece) {
            w.write_all(p)?;
        }
        w.finish()
    }

    /// Text-like data, compressible but not trivially.
    fn sample(n: usize) -> Vec<u8> {
        let mut x = 0x1234_5678u32;
        (0..n)
            .map(|i| {
                x ^= x << 13;
                x ^= x >> 17;
                x ^= x << 5;
                if i % 7 == 0 {
                    b'a' + (x % 26) as u8
                } else {
                    b"the quick brown fox "[i % 20]
                }
            })
            .collect()
    }

    #[test]
    fn preflate_version_matches_the_pin() {
        let toml = include_str!("../../../Cargo.toml");
        assert!(
            toml.contains(&format!(
                "preflate-rs = {{ version = \"={PREFLATE_VERSION}\""
            )),
            "PREFLATE_VERSION must equal the version pinned in Cargo.toml"
        );
    }

    #[test]
    fn records_read_back() {
        let recs = [
            Record::Raw(vec![1, 2, 3]),
            Record::Stream,
            Record::Chunk {
                plain: 7,
                compressed: 3,
                corrections: vec![9; 40],
            },
        ];
        let mut buf = Vec::new();
        for r in &recs {
            r.write_to(&mut buf).unwrap();
        }
        let mut rd = &buf[..];
        for r in &recs {
            assert_eq!(Record::read_from(&mut rd).unwrap().as_ref(), Some(r));
        }
        assert_eq!(Record::read_from(&mut rd).unwrap(), None);
        let mut cut = &buf[..buf.len() - 1];
        let end = std::iter::from_fn(|| Record::read_from(&mut cut).transpose()).last();
        assert!(matches!(end, Some(Err(_))), "a cut record is an error");
    }

    /// Several chunks and two members, fed and rebuilt in odd piece sizes.
    #[test]
    fn multi_member_roundtrip() {
        let plain = sample(3 << 20);
        let blob = [gzip(&plain[..1 << 20], 6), gzip(&plain[1 << 20..], 1)].concat();
        let exact = analyse(&blob, 100_003).unwrap();
        assert_eq!(exact.members, 2);
        assert!(
            exact.records.len() < blob.len() / 20,
            "{}",
            exact.records.len()
        );
        assert_eq!(rebuild(&exact.records, &plain, 65_537).unwrap(), blob);
    }

    #[test]
    fn header_fields_are_kept() {
        let plain = sample(10_000);
        let mut e = flate2::GzBuilder::new()
            .filename("layer.tar")
            .comment("hi")
            .extra(vec![1, 2, 3])
            .mtime(12345)
            .write(Vec::new(), flate2::Compression::new(6));
        e.write_all(&plain).unwrap();
        let blob = e.finish().unwrap();
        let exact = analyse(&blob, 3).unwrap();
        assert_eq!(rebuild(&exact.records, &plain, 1).unwrap(), blob);
    }

    #[test]
    fn wrong_plain_text_fails() {
        let plain = sample(100_000);
        let blob = gzip(&plain, 6);
        let exact = analyse(&blob, 1 << 20).unwrap();
        let mut longer = plain.clone();
        longer.push(0);
        assert!(rebuild(&exact.records, &longer, 4096).is_err());
        assert!(rebuild(&exact.records, &plain[1..], 4096).is_err());
    }

    #[test]
    fn garbage_is_not_exact_and_does_not_panic() {
        for blob in [
            vec![],
            vec![0x1f, 0x8b, 8, 0, 0, 0, 0, 0, 0, 3, 0xff, 0xff, 0xff],
            vec![0x1f, 0x8b, 9, 0, 0, 0, 0, 0, 0, 3],
            b"not gzip at all".to_vec(),
        ] {
            assert!(analyse(&blob, 5).is_err(), "{blob:?}");
        }
        // a valid member followed by junk
        let mut blob = gzip(b"hello", 6);
        blob.extend(b"junk");
        assert!(analyse(&blob, 5).is_err());
    }

    /// Damaged records (a bad copy of the metadata) give an error, other bytes or (where the
    /// damage hits bits the decoder never reads) the same bytes, never a panic: export checks
    /// the digest and re-compresses.
    #[test]
    fn corrupt_records_fail_cleanly() {
        let plain = sample(300_000);
        let blob = gzip(&plain, 6);
        let exact = analyse(&blob, 1 << 20).unwrap();
        for i in (0..exact.records.len()).step_by((exact.records.len() / 40).max(1)) {
            let mut bad = exact.records.clone();
            bad[i] ^= 0x55;
            let _ = rebuild(&bad, &plain, 8192);
        }
        assert!(rebuild(&exact.records[..exact.records.len() / 2], &plain, 8192).is_err());
    }

    #[test]
    fn empty_member() {
        let blob = gzip(b"", 6);
        let exact = analyse(&blob, 1).unwrap();
        assert_eq!(rebuild(&exact.records, b"", 1).unwrap(), blob);
    }
}

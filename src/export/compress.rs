//! Layer compression on export: gzip in pigz-style blocks on every core
//! ([`crate::par_deflate`]: one gzip member, mtime 0, OS 255), zstd with its own worker
//! threads, or none.
//!
//! Deterministic: the same tar and options give the same bytes whatever the number of cores
//! (zstd's multithreaded output does not depend on its worker count either).

use std::io::{self, Write};

use crate::decompress::Compression;
use crate::error::{Error, Result};
use crate::par_deflate::{self, Gzip};

/// gzip level when none is given (gzip's and Go's default).
pub const GZIP_DEFAULT_LEVEL: u32 = 6;

/// zstd level when none is given (zstd's default).
pub const ZSTD_DEFAULT_LEVEL: u32 = 3;

/// Layer annotations that locate data inside the compressed blob (zstd:chunked's table of
/// contents and tar-split, under both the old `io.containers.` and the current
/// `io.github.containers.` prefix; eStargz's table of contents). They are false for any other
/// bytes, so a re-compressed layer must not carry them: a partial pull (containers/storage,
/// the stargz snapshotter) would read its files from the wrong offsets or fail.
pub fn describes_compressed_bytes(key: &str) -> bool {
    const PREFIXES: [&str; 3] = [
        "io.containers.zstd-chunked.",
        "io.github.containers.zstd-chunked.",
        "containerd.io/snapshot/stargz/",
    ];
    PREFIXES.iter().any(|p| key.starts_with(p)) || key == "io.containers.estargz.uncompressed-size"
}

/// How to compress exported layers.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct LayerCompression {
    /// The format.
    pub kind: Compression,
    /// The level (gzip 1–9, zstd 1–19); `None` for the format's default.
    pub level: Option<u32>,
}

impl LayerCompression {
    /// `kind` at its default level.
    pub fn new(kind: Compression) -> Self {
        LayerCompression { kind, level: None }
    }

    /// Parses `gzip`, `zstd` or `none` and an optional level.
    ///
    /// # Errors
    /// An unknown format, or a level outside the format's range.
    pub fn parse(kind: &str, level: Option<u32>) -> Result<Self> {
        let bad = |reason: String| Error::Invalid {
            what: format!("--compression {kind}"),
            reason,
        };
        let kind = match kind {
            "gzip" => Compression::Gzip,
            "zstd" => Compression::Zstd,
            "none" => Compression::None,
            other => {
                return Err(bad(format!(
                    "unknown compression {other:?} (choose gzip, zstd or none)"
                )));
            }
        };
        let range = match kind {
            Compression::Gzip => 1..=9,
            Compression::Zstd => 1..=19,
            _ => 0..=0,
        };
        if let Some(l) = level {
            if !range.contains(&l) {
                return Err(bad(format!(
                    "level {l} is out of range for this format ({}..={})",
                    range.start(),
                    range.end()
                )));
            }
        }
        Ok(LayerCompression { kind, level })
    }

    /// The layer media type for this compression, in the family (OCI or docker) of
    /// `original`. Docker has no zstd type: zstd layers get the OCI one.
    pub fn media_type(&self, original: &str) -> &'static str {
        let docker = original.starts_with("application/vnd.docker.");
        match (self.kind, docker) {
            (Compression::Gzip, true) => "application/vnd.docker.image.rootfs.diff.tar.gzip",
            (Compression::Gzip, false) => "application/vnd.oci.image.layer.v1.tar+gzip",
            (Compression::Zstd, _) => "application/vnd.oci.image.layer.v1.tar+zstd",
            (_, true) => "application/vnd.docker.image.rootfs.diff.tar",
            (_, false) => "application/vnd.oci.image.layer.v1.tar",
        }
    }
}

/// Passes writes on and swallows flushes: a flush makes zstd end a block early, so the
/// blob would depend on where the tar writer happened to flush, not on the tar alone.
struct NoFlush<W>(W);

impl<W: Write> Write for NoFlush<W> {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        self.0.write(buf)
    }
    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

/// Runs `body` with a writer that compresses into `out`, then ends the compressed stream.
/// The stream is ended even when `body` fails (so no compressor thread is left behind); the
/// first error wins.
///
/// # Errors
/// `body`'s error, or the compressor's.
pub fn compress_into<W: Write + Send, T>(
    out: W,
    c: &LayerCompression,
    body: impl FnOnce(&mut dyn Write) -> io::Result<T>,
) -> io::Result<T> {
    encode(out, c, par_deflate::threads(), body)
}

fn encode<W: Write + Send, T>(
    out: W,
    c: &LayerCompression,
    threads: usize,
    body: impl FnOnce(&mut dyn Write) -> io::Result<T>,
) -> io::Result<T> {
    match c.kind {
        Compression::Gzip => par_deflate::deflate_into::<Gzip, _, _>(
            out,
            c.level.unwrap_or(GZIP_DEFAULT_LEVEL),
            threads,
            body,
        ),
        Compression::Zstd => {
            let level = c.level.unwrap_or(ZSTD_DEFAULT_LEVEL) as i32;
            let mut z = zstd::stream::Encoder::new(out, level)?;
            z.multithread(threads as u32)?;
            let t = body(&mut NoFlush(&mut z))?;
            z.finish()?;
            Ok(t)
        }
        _ => {
            let mut out = out;
            let t = body(&mut out)?;
            out.flush()?;
            Ok(t)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Read;

    fn sample() -> Vec<u8> {
        // Compressible but not trivial: 3 MiB of varied text.
        (0..200_000u32)
            .flat_map(|i| format!("line {i} {}\n", i.wrapping_mul(2_654_435_761)).into_bytes())
            .take(3 << 20)
            .collect()
    }

    fn compress(c: &LayerCompression, data: &[u8], chunk: usize, threads: usize) -> Vec<u8> {
        let mut out = Vec::new();
        encode(&mut out, c, threads, |w| {
            crate::par_deflate::tests::write_in_pieces(w, data, chunk)
        })
        .unwrap();
        out
    }

    /// Same bytes in, same bytes out, however the input is cut into writes (each one
    /// flushed) and however many threads compress; and it decompresses back.
    #[test]
    fn deterministic_and_round_trips() {
        let data = sample();
        for kind in [Compression::Gzip, Compression::Zstd, Compression::None] {
            let c = LayerCompression::new(kind);
            let a = compress(&c, &data, 1000, 2);
            let b = compress(&c, &data, 65_536 + 7, 2);
            assert!(a == b, "{kind:?} output depends on write sizes");
            let one = compress(&c, &data, 4096, 1);
            let many = compress(&c, &data, 4096, 5);
            assert!(
                one == a && many == a,
                "{kind:?} output depends on the thread count"
            );
            let mut back = Vec::new();
            crate::decompress::decompress(io::BufReader::new(&a[..]))
                .unwrap()
                .read_to_end(&mut back)
                .unwrap();
            assert!(back == data, "{kind:?} does not round-trip");
            if kind != Compression::None {
                assert!(a.len() < data.len() / 2, "{kind:?} did not compress");
            }
        }
    }

    /// Accepts `room` bytes, then fails as a full disk does.
    struct Full {
        room: usize,
    }

    impl Write for Full {
        fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
            if self.room == 0 {
                return Err(io::Error::from_raw_os_error(27)); // EFBIG
            }
            let n = buf.len().min(self.room);
            self.room -= n;
            Ok(n)
        }
        fn flush(&mut self) -> io::Result<()> {
            Ok(())
        }
    }

    /// A destination that fails part way is an error for every format, never a panic (gzp's
    /// finish panicked after its writer thread had failed), whether the failure shows while
    /// writing or only at the end.
    #[test]
    fn a_failing_destination_is_an_error() {
        let data = sample();
        for kind in [Compression::Gzip, Compression::Zstd, Compression::None] {
            for room in [0, 10, 100_000] {
                for threads in [1, 3] {
                    let c = LayerCompression::new(kind);
                    let r = std::panic::catch_unwind(|| {
                        encode(Full { room }, &c, threads, |w| w.write_all(&data))
                    });
                    let r = r.unwrap_or_else(|_| panic!("{kind:?} room {room} panicked"));
                    let e = r.expect_err("the destination is full");
                    assert_eq!(e.raw_os_error(), Some(27), "{kind:?} room {room}: {e}");
                }
            }
        }
    }

    #[test]
    fn parses_levels() {
        assert!(LayerCompression::parse("gzip", Some(9)).is_ok());
        assert!(LayerCompression::parse("gzip", Some(10)).is_err());
        assert!(LayerCompression::parse("zstd", Some(19)).is_ok());
        assert!(LayerCompression::parse("none", Some(1)).is_err());
        assert!(LayerCompression::parse("brotli", None).is_err());
        assert_eq!(
            LayerCompression::new(Compression::Zstd)
                .media_type("application/vnd.docker.image.rootfs.diff.tar.gzip"),
            "application/vnd.oci.image.layer.v1.tar+zstd"
        );
    }
}

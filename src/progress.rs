//! Progress of an import, as events for a caller-supplied [`Progress`] (through a [`Reporter`]): the CLI draws
//! bars from them on a terminal or prints them as JSON lines (`--json`).
//!
//! Events are small and bounded: digests, counts and sizes, never file names or layer data.
//! Byte counts are of the blob as read (compressed), reported at most every [`STEP`] bytes per
//! layer, so a listener is never flooded.

use std::fmt;
use std::io::Read;
use std::sync::Arc;

use serde::Serialize;

/// Bytes between two [`Event::LayerBytes`] of one layer.
pub const STEP: u64 = 1 << 20;

/// What an import is doing.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
#[serde(tag = "event", rename_all = "kebab-case")]
#[non_exhaustive]
pub enum Event {
    /// The index lists several manifests for the wanted platform: the first was taken (as
    /// the image-index spec says); the others can be picked with `SOURCE@DIGEST`.
    PlatformFirstOfSeveral {
        /// The image source.
        image: String,
        /// The platform asked for (or the host's).
        platform: String,
        /// The manifest taken: the first listed.
        chosen: String,
        /// The other manifests for that platform, in index order, each as the source string
        /// that picks it (`SOURCE@DIGEST`).
        others: Vec<String>,
    },
    /// The manifest is chosen: how many layers, and the blob bytes of those to read.
    Resolved {
        /// The manifest digest.
        manifest: String,
        /// Layers in the image (selected ones).
        layers: usize,
        /// Layers not in the repository yet, to be read.
        to_read: usize,
        /// Their blob bytes.
        bytes: u64,
    },
    /// A layer is already in the repository: not read.
    LayerReused {
        /// Position in the manifest's (selected) layers.
        index: usize,
        /// Blob digest.
        digest: String,
    },
    /// Bytes of a layer blob downloaded so far (registry sources, which download ahead of the
    /// import on their own threads); at most every [`STEP`] bytes, and at the end.
    LayerDownload {
        /// Blob digest.
        digest: String,
        /// Bytes in the spool file so far (a resumed download starts above 0).
        downloaded: u64,
        /// Blob size.
        size: u64,
    },
    /// A layer blob starts streaming.
    LayerStart {
        /// Position in the manifest's (selected) layers.
        index: usize,
        /// Blob digest.
        digest: String,
        /// Blob size.
        size: u64,
    },
    /// Blob bytes read so far (verified, decompressed and written as they go).
    LayerBytes {
        /// Position in the manifest's (selected) layers.
        index: usize,
        /// Bytes read so far.
        read: u64,
    },
    /// A layer is committed.
    LayerDone {
        /// Position in the manifest's (selected) layers.
        index: usize,
        /// Blob digest.
        digest: String,
        /// The layer commit.
        commit: String,
    },
    /// Layers are merged and the image commit written.
    Done {
        /// The image commit.
        commit: String,
    },
}

/// Receives [`Event`]s, from the importing thread, the thread that reads blobs and the
/// download threads.
pub trait Progress: Send + Sync {
    /// Called for every event, in order for each layer.
    fn event(&self, e: &Event);
}

/// Where an import's events go: a shared [`Progress`] in [`crate::import::ImportOptions`], none by
/// default.
#[derive(Clone, Default)]
pub struct Reporter(Option<Arc<dyn Progress>>);

impl Reporter {
    /// A reporter sending to `p`.
    pub fn new(p: Arc<dyn Progress>) -> Self {
        Reporter(Some(p))
    }

    /// Sends `e`, if anyone listens.
    pub fn emit(&self, e: Event) {
        if let Some(p) = &self.0 {
            p.event(&e);
        }
    }

    /// Wraps a blob reader to report [`Event::LayerBytes`] for layer `index`.
    pub fn counting<R: Read>(&self, index: usize, inner: R) -> Counting<R> {
        Counting {
            inner,
            reporter: self.clone(),
            index,
            read: 0,
            reported: 0,
        }
    }
}

impl fmt::Debug for Reporter {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(if self.0.is_some() {
            "Reporter(..)"
        } else {
            "Reporter(none)"
        })
    }
}

/// A reader that reports how much of a layer blob has been read.
#[derive(Debug)]
pub struct Counting<R> {
    inner: R,
    reporter: Reporter,
    index: usize,
    read: u64,
    reported: u64,
}

impl<R: Read> Read for Counting<R> {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        let n = self.inner.read(buf)?;
        self.read += n as u64;
        if self.read - self.reported >= STEP || (n == 0 && self.read > self.reported) {
            self.reported = self.read;
            self.reporter.emit(Event::LayerBytes {
                index: self.index,
                read: self.read,
            });
        }
        Ok(n)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::Mutex;

    #[derive(Default)]
    struct Log(Mutex<Vec<Event>>);
    impl Progress for Log {
        fn event(&self, e: &Event) {
            self.0.lock().unwrap().push(e.clone());
        }
    }

    /// Byte events come every STEP bytes and once at the end, not per read.
    #[test]
    fn counting_reports_in_steps() {
        let log = Arc::new(Log::default());
        let reporter = Reporter::new(log.clone());
        let data = vec![0u8; (STEP * 2 + 10) as usize];
        let mut r = reporter.counting(3, &data[..]);
        let mut buf = [0u8; 4096];
        while r.read(&mut buf).unwrap() > 0 {}
        let reads: Vec<u64> = log
            .0
            .lock()
            .unwrap()
            .iter()
            .map(|e| match e {
                Event::LayerBytes { index: 3, read } => *read,
                other => panic!("{other:?}"),
            })
            .collect();
        assert_eq!(reads, [STEP, STEP * 2, STEP * 2 + 10]);
        let json = serde_json::to_string(&Event::LayerBytes { index: 1, read: 5 }).unwrap();
        assert_eq!(json, r#"{"event":"layer-bytes","index":1,"read":5}"#);
    }
}

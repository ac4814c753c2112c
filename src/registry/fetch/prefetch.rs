//! A bounded pool of download threads ahead of the import, and the reader that follows a
//! blob while it downloads.

use std::collections::{HashMap, HashSet, VecDeque};
use std::fs::{self, File};
use std::io::{self, Read};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Condvar, Mutex};
use std::thread::JoinHandle;

use super::BUF;
use super::download::{Progress, Watch, download};
use super::spool::Spooled;
use crate::blob::BlobReader;
use crate::digest::Digest;
use crate::error::{Error, Result};
use crate::progress;
use crate::registry::places::Places;

/// The state of one prefetched blob.
#[derive(Debug)]
enum Slot {
    /// Queued.
    Waiting,
    /// Downloading into `partial`, which holds `have` bytes; `fresh` when it started empty.
    Running {
        partial: PathBuf,
        fresh: bool,
        have: u64,
    },
    /// Finished: the complete file, or why not.
    Done(Result<Spooled>),
}

#[derive(Debug, Default)]
struct State {
    queue: VecDeque<(Digest, u64)>,
    slots: HashMap<Digest, Slot>,
    /// Blobs a reader follows while they download (see [`Watch::followed`]).
    followed: HashSet<Digest>,
}

#[derive(Debug)]
struct Shared {
    state: Mutex<State>,
    ready: Condvar,
    cancel: AtomicBool,
}

impl Shared {
    fn lock(&self) -> std::sync::MutexGuard<'_, State> {
        self.state.lock().expect("lock poisoned only by a panic")
    }
}

/// A bounded pool of threads downloading blobs into a spool directory, in the order given.
/// Dropping it cancels the downloads still running and waits for the threads.
#[derive(Debug)]
pub struct Prefetch {
    shared: Arc<Shared>,
    workers: Vec<JoinHandle<()>>,
}

impl Prefetch {
    /// Starts `threads` downloaders (at least one) for `blobs` into `spool`, from the first
    /// of `places` or, where it fails, the places after it.
    pub fn start(
        places: Places,
        blobs: &[(Digest, u64)],
        spool: &Path,
        threads: usize,
        events: progress::Reporter,
    ) -> Prefetch {
        let mut state = State::default();
        for (d, size) in blobs {
            if !state.slots.contains_key(d) {
                state.slots.insert(d.clone(), Slot::Waiting);
                state.queue.push_back((d.clone(), *size));
            }
        }
        let n = threads.max(1).min(state.queue.len());
        let shared = Arc::new(Shared {
            state: Mutex::new(state),
            ready: Condvar::new(),
            cancel: AtomicBool::new(false),
        });
        let workers = (0..n)
            .map(|_| {
                let (shared, places, spool, events) = (
                    Arc::clone(&shared),
                    places.clone(),
                    spool.to_path_buf(),
                    events.clone(),
                );
                std::thread::spawn(move || worker(&shared, &places, &spool, &events))
            })
            .collect();
        Prefetch { shared, workers }
    }

    /// Opens the blob `digest` as it downloads: a fresh download is read while it is being
    /// written (the reader waits for bytes, and ends only once the download is complete and
    /// verified); a resumed one once it is complete. The spooled file is removed once read to
    /// the end. `None` if the pool does not fetch it.
    ///
    /// # Errors
    /// The download failed before anything could be read (later failures are read errors).
    pub fn take(&self, digest: &Digest) -> Option<Result<BlobReader>> {
        let mut state = self.shared.lock();
        loop {
            let (path, running) = match state.slots.get(digest)? {
                Slot::Done(Ok(s)) => (s.path.clone(), false),
                Slot::Running {
                    partial,
                    fresh: true,
                    ..
                } => (partial.clone(), true),
                Slot::Done(Err(_)) => {
                    let Some(Slot::Done(Err(e))) = state.slots.remove(digest) else {
                        unreachable!("matched above");
                    };
                    return Some(Err(e));
                }
                Slot::Waiting | Slot::Running { .. } => {
                    state = self
                        .shared
                        .ready
                        .wait(state)
                        .expect("lock poisoned only by a panic");
                    continue;
                }
            };
            match File::open(&path) {
                Ok(file) => {
                    if running {
                        state.followed.insert(digest.clone());
                    }
                    return Some(Ok(Box::new(io::BufReader::with_capacity(
                        BUF,
                        TailReader {
                            file,
                            pos: 0,
                            shared: Arc::clone(&self.shared),
                            digest: digest.clone(),
                        },
                    ))));
                }
                // Renamed as it completed: wait for the worker to say so, then look again.
                Err(e) if running && e.kind() == io::ErrorKind::NotFound => {
                    state = self
                        .shared
                        .ready
                        .wait(state)
                        .expect("lock poisoned only by a panic");
                }
                Err(e) => return Some(Err(Error::io(format!("opening {}", path.display()))(e))),
            }
        }
    }
}

/// Reads a spooled blob while its download appends to it.
#[derive(Debug)]
struct TailReader {
    file: File,
    pos: u64,
    shared: Arc<Shared>,
    digest: Digest,
}

impl Read for TailReader {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        if buf.is_empty() {
            return Ok(0);
        }
        let mut state = self.shared.lock();
        loop {
            let available = match state.slots.get(&self.digest) {
                Some(Slot::Running { have, .. }) => *have > self.pos,
                Some(Slot::Done(Ok(_))) => true,
                // A failed download is a bad blob, not a bad stream inside a good one.
                Some(Slot::Done(Err(e))) => {
                    return Err(io::Error::new(
                        io::ErrorKind::InvalidData,
                        crate::blob::BlobMismatch(e.to_string()),
                    ));
                }
                // Taken: the download completed and this reader already removed the file.
                None => true,
                Some(Slot::Waiting) => false,
            };
            if available {
                break;
            }
            state = self
                .shared
                .ready
                .wait(state)
                .expect("lock poisoned only by a panic");
        }
        drop(state);
        let n = self.file.read(buf)?;
        self.pos += n as u64;
        if n == 0 {
            // Complete and read to the end: the spooled file is no longer needed.
            if let Some(Slot::Done(Ok(s))) = self.shared.lock().slots.remove(&self.digest) {
                let _ = fs::remove_file(&s.path);
            }
        }
        Ok(n)
    }
}

fn worker(shared: &Shared, places: &Places, spool: &Path, events: &progress::Reporter) {
    loop {
        let next = shared.lock().queue.pop_front();
        let Some((digest, size)) = next else { return };
        if shared.cancel.load(Ordering::Relaxed) {
            return;
        }
        let reported = std::cell::Cell::new(None::<u64>);
        let progress = |p: Progress| {
            if let Progress::Have(n) = p
                && (n == size || reported.get().is_none_or(|r| n >= r + progress::STEP))
            {
                reported.set(Some(n));
                events.emit(progress::Event::LayerDownload {
                    digest: digest.to_string(),
                    downloaded: n,
                    size,
                });
            }
            let mut s = shared.lock();
            if let Some(slot) = s.slots.get_mut(&digest) {
                match (p, slot) {
                    (Progress::Started { fresh, partial }, slot) => {
                        *slot = Slot::Running {
                            partial,
                            fresh,
                            have: 0,
                        };
                    }
                    (Progress::Have(n), Slot::Running { have, .. }) => *have = n,
                    _ => {}
                }
            }
            shared.ready.notify_all();
        };
        let followed = || shared.lock().followed.contains(&digest);
        let watch = Watch {
            cancel: &shared.cancel,
            progress: &progress,
            followed: &followed,
        };
        let result = download(places, &digest, size, spool, &watch);
        let mut s = shared.lock();
        if let Some(slot) = s.slots.get_mut(&digest) {
            *slot = Slot::Done(result);
        }
        shared.ready.notify_all();
    }
}

impl Drop for Prefetch {
    fn drop(&mut self) {
        self.shared.cancel.store(true, Ordering::Relaxed);
        self.shared.lock().queue.clear();
        for w in self.workers.drain(..) {
            let _ = w.join();
        }
    }
}

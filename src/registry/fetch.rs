//! Pulling blobs: one streamed GET for small blobs, and a bounded pool of download threads
//! ([`Prefetch`]) that spools layer blobs into the repository's tmp directory while earlier
//! layers are imported. A layer whose download started from nothing is imported while it
//! downloads: its reader follows the growing file and ends only once the download is
//! complete and verified (so the import's own digest check and the download's agree).
//!
//! A download writes `<spool>/<alg>-<hex>.partial`, hashing as it goes; when the size and
//! digest match it is renamed to `<alg>-<hex>`. An interrupted transfer is resumed with an
//! HTTP `Range` request from the partial file's length, within the run (after a backoff) and
//! across runs (the partial file stays; `ocitree prune` removes it). A resumed blob whose final
//! digest does not match is discarded and fetched once more from zero.

use std::collections::{HashMap, VecDeque};
use std::fs::{self, File, OpenOptions};
use std::io::{self, Read, Seek, SeekFrom, Write};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Condvar, Mutex};
use std::thread::JoinHandle;

use ureq::http::Method;

use crate::digest::{Digest, Hasher};
use crate::error::{Error, Result};
use crate::progress;
use crate::registry::client::{ATTEMPTS, Client, Payload, backoff};
use crate::source::BlobReader;

const BUF: usize = 256 << 10;

/// Opens blob `digest` as one streamed GET (not verified: the caller wraps it).
///
/// # Errors
/// The request fails or the registry does not have the blob.
pub fn open_blob(client: &Client, digest: &Digest) -> Result<BlobReader> {
    let url = client.url(&format!("/blobs/{digest}"));
    let resp = client.send(Method::GET, &url, &[], Payload::Empty)?;
    if !resp.status().is_success() {
        return Err(client.status_error(&url, &format!("blob {digest}"), resp));
    }
    Ok(Box::new(resp.into_body().into_reader()))
}

/// The spool file names of a blob: (complete, partial).
pub fn spool_paths(spool: &Path, digest: &Digest) -> (PathBuf, PathBuf) {
    let base = format!("{}-{}", digest.algorithm(), digest.encoded());
    (spool.join(&base), spool.join(format!("{base}.partial")))
}

/// Ownership of a blob's shared spool files: `ALG-HEX.lock`, created exclusively, holding
/// the owner's process id, removed on drop. A lock whose process is gone is taken over.
#[derive(Debug)]
struct SpoolLock(PathBuf);

impl SpoolLock {
    /// Takes the lock, or `None` while a live process (this one included) holds it.
    fn acquire(spool: &Path, digest: &Digest) -> io::Result<Option<SpoolLock>> {
        let path = spool.join(format!("{}-{}.lock", digest.algorithm(), digest.encoded()));
        for _ in 0..2 {
            match OpenOptions::new().write(true).create_new(true).open(&path) {
                Ok(mut f) => {
                    write!(f, "{}", std::process::id())?;
                    return Ok(Some(SpoolLock(path)));
                }
                Err(e) if e.kind() == io::ErrorKind::AlreadyExists => {
                    let owner = fs::read_to_string(&path).unwrap_or_default();
                    let live = owner.trim().parse::<u32>().is_ok_and(|pid| {
                        pid == std::process::id()
                            || Path::new("/proc").join(pid.to_string()).exists()
                    });
                    if live {
                        return Ok(None);
                    }
                    // left by a process that died: take it over
                    let _ = fs::remove_file(&path);
                }
                Err(e) => return Err(e),
            }
        }
        Ok(None)
    }
}

impl Drop for SpoolLock {
    fn drop(&mut self) {
        let _ = fs::remove_file(&self.0);
    }
}

/// A downloaded, verified blob in the spool. While it lives, no other download (of any
/// process) touches the file; dropping it leaves the file for a later run.
#[derive(Debug)]
pub struct Spooled {
    /// The complete file.
    pub path: PathBuf,
    /// The lock on the blob's shared spool names, if it has them.
    _lock: Option<SpoolLock>,
}

/// Spool names private to this download, for when another download holds the shared ones.
fn private_paths(spool: &Path, digest: &Digest) -> (PathBuf, PathBuf) {
    static SEQ: std::sync::atomic::AtomicUsize = std::sync::atomic::AtomicUsize::new(0);
    let n = SEQ.fetch_add(1, Ordering::Relaxed);
    let base = format!(
        "{}-{}.{}-{n}",
        digest.algorithm(),
        digest.encoded(),
        std::process::id()
    );
    (spool.join(&base), spool.join(format!("{base}.partial")))
}

/// An error of writing blob `digest`'s spool file `p`.
fn spool_err(digest: &Digest, p: &Path) -> impl FnOnce(io::Error) -> Error + use<> {
    let context = format!("spooling blob {digest} to {}", p.display());
    move |cause| Error::Io { context, cause }
}

/// Why one transfer attempt stopped.
enum Stop {
    /// The connection broke or timed out: resume from where the file ends.
    Transient(String),
    /// Anything else: give up.
    Fatal(Error),
}

/// Downloads blob `digest` of `size` bytes into `spool`, resuming a partial file; returns the
/// path of the verified complete file. While another download (another process, or another
/// pool of this one) owns the blob's spool files, this one uses private names and keeps
/// nothing for a later run.
///
/// The lock on the shared names is held until the returned [`Spooled`] is dropped, so that
/// the file is not taken over before it has been read.
///
/// # Errors
/// The registry fails past the retries, or the content does not match `digest` (after one
/// fresh download when a resumed one did not match).
pub fn download(
    client: &Client,
    digest: &Digest,
    size: u64,
    spool: &Path,
    cancel: &AtomicBool,
    progress: &dyn Fn(Progress),
) -> Result<Spooled> {
    let io_err = |p: &Path| spool_err(digest, p);
    fs::create_dir_all(spool).map_err(io_err(spool))?;
    // Another pull of the same blob (into this repository) owns the shared names: download
    // under private ones rather than write into the same file, and keep nothing of them.
    let lock = SpoolLock::acquire(spool, digest).map_err(io_err(spool))?;
    let Some(lock) = lock else {
        let (done, partial) = private_paths(spool, digest);
        let r = download_to(client, digest, size, (&done, &partial), cancel, progress);
        if r.is_err() {
            let _ = fs::remove_file(&partial);
        }
        return r.map(|path| Spooled { path, _lock: None });
    };
    let (done, partial) = spool_paths(spool, digest);
    download_to(client, digest, size, (&done, &partial), cancel, progress).map(|path| Spooled {
        path,
        _lock: Some(lock),
    })
}

/// [`download`] into the files `done` and `partial`.
fn download_to(
    client: &Client,
    digest: &Digest,
    size: u64,
    (done, partial): (&Path, &Path),
    cancel: &AtomicBool,
    progress: &dyn Fn(Progress),
) -> Result<PathBuf> {
    let url = client.url(&format!("/blobs/{digest}"));
    let io_err = |p: &Path| spool_err(digest, p);
    // A complete file from an earlier run is checked like a partial one that needs no bytes.
    if done.exists() {
        fs::rename(done, partial).map_err(io_err(partial))?;
    }
    let mut fresh_retry = false;
    loop {
        let mut file = OpenOptions::new()
            .read(true)
            .write(true)
            .create(true)
            .truncate(false)
            .open(partial)
            .map_err(io_err(partial))?;
        let mut have = file.metadata().map_err(io_err(partial))?.len();
        if have > size {
            file.set_len(0).map_err(io_err(partial))?;
            have = 0;
        }
        let resumed = have > 0;
        let mut hasher = digest.hasher()?;
        hash_prefix(&mut file, have, &mut hasher).map_err(io_err(partial))?;
        progress(Progress::Started {
            fresh: !resumed,
            partial: partial.to_path_buf(),
        });
        let mut part = Partial { file, have, hasher };
        // Failures in a row without a byte of progress: a flaky link that keeps delivering
        // resumes as often as it takes, a dead one gives up after ATTEMPTS.
        let mut failures = 0;
        while part.have < size {
            let before = part.have;
            if cancel.load(Ordering::Relaxed) {
                return Err(Error::Registry {
                    url,
                    reason: "download cancelled".into(),
                });
            }
            match transfer(client, &url, &mut part, size, cancel, progress) {
                Ok(()) => {}
                Err(Stop::Fatal(e)) => return Err(e),
                Err(Stop::Transient(why)) => {
                    if part.have > before {
                        failures = 0;
                    }
                    failures += 1;
                    if failures >= ATTEMPTS {
                        return Err(Error::Registry {
                            url,
                            reason: format!(
                                "blob {digest}: transfer failed {failures} times in a row, \
                                 {} of {size} bytes kept for the next run: {why}",
                                part.have
                            ),
                        });
                    }
                    std::thread::sleep(backoff(failures));
                }
            }
        }
        part.file.flush().map_err(io_err(partial))?;
        drop(part.file);
        let found = part.hasher.finish();
        if found == *digest {
            fs::rename(partial, done).map_err(io_err(done))?;
            return Ok(done.to_path_buf());
        }
        fs::remove_file(partial).map_err(io_err(partial))?;
        if resumed && !fresh_retry {
            // The kept part may be what is wrong: start over once.
            fresh_retry = true;
            continue;
        }
        return Err(Error::Registry {
            url,
            reason: format!("blob {digest}: digest mismatch: content hashes to {found}"),
        });
    }
}

/// Feeds the first `len` bytes of `file` to `hasher` and leaves the position at `len`.
fn hash_prefix(file: &mut File, len: u64, hasher: &mut Hasher) -> io::Result<()> {
    file.seek(SeekFrom::Start(0))?;
    let mut buf = vec![0; BUF];
    let mut left = len;
    while left > 0 {
        let n = file.read(&mut buf[..BUF.min(left as usize)])?;
        if n == 0 {
            return Err(io::Error::new(
                io::ErrorKind::UnexpectedEof,
                "partial file shrank",
            ));
        }
        hasher.update(&buf[..n]);
        left -= n as u64;
    }
    file.seek(SeekFrom::Start(len))?;
    Ok(())
}

/// What a download reports while it runs.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Progress {
    /// The partial file is open; `fresh` when it started empty (then it only ever grows, and
    /// can be read while it is written).
    Started {
        /// Nothing was kept from an earlier attempt.
        fresh: bool,
        /// The file being written.
        partial: PathBuf,
    },
    /// The partial file now holds this many bytes.
    Have(u64),
}

/// A partial download: the file, how much it holds, and the hash of that.
struct Partial {
    file: File,
    have: u64,
    hasher: Hasher,
}

/// One GET from byte `part.have`, appending to the partial file.
///
/// The file only ever grows here (a reader may be following it): a `200` answer to a range
/// request has its first `have` bytes skipped, and an answer for another range is an error.
fn transfer(
    client: &Client,
    url: &str,
    part: &mut Partial,
    size: u64,
    cancel: &AtomicBool,
    progress: &dyn Fn(Progress),
) -> std::result::Result<(), Stop> {
    let range = format!("bytes={}-", part.have);
    let headers: Vec<(&str, &str)> = if part.have > 0 {
        vec![("Range", &range)]
    } else {
        vec![]
    };
    let resp = match client.send(Method::GET, url, &headers, Payload::Empty) {
        Ok(r) => r,
        // `send` already retried: the registry is down, not just a dropped connection.
        Err(e) => return Err(Stop::Fatal(e)),
    };
    let mut skip = match resp.status().as_u16() {
        206 => {
            let start = resp
                .headers()
                .get("content-range")
                .and_then(|v| v.to_str().ok())
                .and_then(|v| v.strip_prefix("bytes "))
                .and_then(|v| v.split('-').next())
                .and_then(|v| v.parse::<u64>().ok());
            if start != Some(part.have) {
                return Err(Stop::Fatal(Error::Registry {
                    url: url.to_string(),
                    reason: format!(
                        "asked for bytes {}- and got another range ({start:?})",
                        part.have
                    ),
                }));
            }
            0
        }
        // The registry ignored the range: skip what we have.
        200 => part.have,
        _ => return Err(Stop::Fatal(client.status_error(url, "blob", resp))),
    };
    let mut body = resp.into_body().into_reader();
    let mut buf = vec![0; BUF];
    loop {
        if cancel.load(Ordering::Relaxed) {
            return Err(Stop::Transient("cancelled".into()));
        }
        let n = match body.read(&mut buf) {
            Ok(0) => break,
            Ok(n) => n,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            Err(e) => return Err(Stop::Transient(e.to_string())),
        };
        let k = skip.min(n as u64) as usize;
        skip -= k as u64;
        let data = &buf[k..n];
        if data.is_empty() {
            continue;
        }
        if part.have + data.len() as u64 > size {
            return Err(Stop::Fatal(Error::Registry {
                url: url.to_string(),
                reason: format!("blob is longer than the {size} bytes its descriptor says"),
            }));
        }
        part.file.write_all(data).map_err(|e| {
            Stop::Fatal(Error::Io {
                context: format!("writing the spooled blob from {url}"),
                cause: e,
            })
        })?;
        part.hasher.update(data);
        part.have += data.len() as u64;
        progress(Progress::Have(part.have));
    }
    if part.have < size {
        return Err(Stop::Transient(format!(
            "connection closed after {} of {size} bytes",
            part.have
        )));
    }
    Ok(())
}

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
    /// Starts `threads` downloaders (at least one) for `blobs` into `spool`.
    pub fn start(
        client: Arc<Client>,
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
                let (shared, client, spool, events) = (
                    Arc::clone(&shared),
                    Arc::clone(&client),
                    spool.to_path_buf(),
                    events.clone(),
                );
                std::thread::spawn(move || worker(&shared, &client, &spool, &events))
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

fn worker(shared: &Shared, client: &Client, spool: &Path, events: &progress::Reporter) {
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
        let result = download(client, &digest, size, spool, &shared.cancel, &progress);
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn spool_lock_is_exclusive_and_stale_locks_are_taken_over() {
        let dir = tempfile::tempdir().unwrap();
        let d = Digest::sha256_of(b"x");
        let held = SpoolLock::acquire(dir.path(), &d).unwrap().unwrap();
        assert!(SpoolLock::acquire(dir.path(), &d).unwrap().is_none());
        drop(held);
        // a lock left by a process that no longer exists
        let path = dir.path().join(format!("sha256-{}.lock", d.encoded()));
        std::fs::write(&path, "4294967295").unwrap();
        let again = SpoolLock::acquire(dir.path(), &d).unwrap();
        assert!(again.is_some());
        drop(again);
        assert!(!path.exists());
    }

    #[test]
    fn private_names_differ() {
        let d = Digest::sha256_of(b"x");
        let (a, b) = (
            private_paths(Path::new("s"), &d),
            private_paths(Path::new("s"), &d),
        );
        assert_ne!(a, b);
        assert_ne!(a.0, spool_paths(Path::new("s"), &d).0);
    }
}

//! Pulling blobs: one streamed GET for small blobs, and a bounded pool of download threads
//! ([`Prefetch`]) that spools layer blobs into the repository's tmp directory while earlier
//! layers are imported.
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

/// Why one transfer attempt stopped.
enum Stop {
    /// The connection broke or timed out: resume from where the file ends.
    Transient(String),
    /// Anything else: give up.
    Fatal(Error),
}

/// Downloads blob `digest` of `size` bytes into `spool`, resuming a partial file; returns the
/// path of the verified complete file.
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
) -> Result<PathBuf> {
    let url = client.url(&format!("/blobs/{digest}"));
    let (done, partial) = spool_paths(spool, digest);
    let io_err = |p: &Path| {
        let ctx = format!("spooling blob {digest} to {}", p.display());
        move |e: io::Error| Error::Io {
            context: ctx,
            cause: e,
        }
    };
    fs::create_dir_all(spool).map_err(io_err(spool))?;
    // A complete file from an earlier run is checked like a partial one that needs no bytes.
    if done.exists() {
        fs::rename(&done, &partial).map_err(io_err(&partial))?;
    }
    let mut fresh_retry = false;
    loop {
        let mut file = OpenOptions::new()
            .read(true)
            .write(true)
            .create(true)
            .truncate(false)
            .open(&partial)
            .map_err(io_err(&partial))?;
        let mut have = file.metadata().map_err(io_err(&partial))?.len();
        if have > size {
            file.set_len(0).map_err(io_err(&partial))?;
            have = 0;
        }
        let resumed = have > 0;
        let blank = digest.hasher()?;
        let mut hasher = blank.clone();
        hash_prefix(&mut file, have, &mut hasher).map_err(io_err(&partial))?;
        let mut part = Partial {
            file,
            have,
            hasher,
            blank,
        };
        let mut failures = 0;
        while part.have < size {
            if cancel.load(Ordering::Relaxed) {
                return Err(Error::Registry {
                    url,
                    reason: "download cancelled".into(),
                });
            }
            match transfer(client, &url, &mut part, size, cancel) {
                Ok(()) => {}
                Err(Stop::Fatal(e)) => return Err(e),
                Err(Stop::Transient(why)) => {
                    failures += 1;
                    if failures >= ATTEMPTS {
                        return Err(Error::Registry {
                            url,
                            reason: format!(
                                "blob {digest}: transfer failed {failures} times, \
                                 {} of {size} bytes kept for the next run: {why}",
                                part.have
                            ),
                        });
                    }
                    std::thread::sleep(backoff(failures));
                }
            }
        }
        part.file.flush().map_err(io_err(&partial))?;
        drop(part.file);
        let found = part.hasher.finish();
        if found == *digest {
            fs::rename(&partial, &done).map_err(io_err(&done))?;
            return Ok(done);
        }
        fs::remove_file(&partial).map_err(io_err(&partial))?;
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

/// A partial download: the file, how much it holds, the hash of that, and a fresh hasher.
struct Partial {
    file: File,
    have: u64,
    hasher: Hasher,
    blank: Hasher,
}

impl Partial {
    /// Empties the file and the hash.
    fn restart(&mut self) -> io::Result<()> {
        self.file.set_len(0)?;
        self.file.seek(SeekFrom::Start(0))?;
        self.have = 0;
        self.hasher = self.blank.clone();
        Ok(())
    }
}

/// One GET from byte `part.have`, appending to the partial file.
fn transfer(
    client: &Client,
    url: &str,
    part: &mut Partial,
    size: u64,
    cancel: &AtomicBool,
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
    let transient = |e: io::Error| Stop::Transient(e.to_string());
    match resp.status().as_u16() {
        206 => {
            let start = resp
                .headers()
                .get("content-range")
                .and_then(|v| v.to_str().ok())
                .and_then(|v| v.strip_prefix("bytes "))
                .and_then(|v| v.split('-').next())
                .and_then(|v| v.parse::<u64>().ok());
            if start != Some(part.have) {
                // Not the range asked for: drop what we kept, ask for everything next time.
                part.restart().map_err(transient)?;
                return Err(Stop::Transient("registry answered another range".into()));
            }
        }
        200 => part.restart().map_err(transient)?,
        416 if part.have > 0 => {
            part.restart().map_err(transient)?;
            return Err(Stop::Transient("registry refused the range".into()));
        }
        _ => return Err(Stop::Fatal(client.status_error(url, "blob", resp))),
    }
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
        if part.have + n as u64 > size {
            return Err(Stop::Fatal(Error::Registry {
                url: url.to_string(),
                reason: format!("blob is longer than the {size} bytes its descriptor says"),
            }));
        }
        part.file.write_all(&buf[..n]).map_err(|e| {
            Stop::Fatal(Error::Io {
                context: format!("writing the spooled blob from {url}"),
                cause: e,
            })
        })?;
        part.hasher.update(&buf[..n]);
        part.have += n as u64;
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
    Waiting,
    Done(Result<PathBuf>),
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
                let (shared, client, spool) = (
                    Arc::clone(&shared),
                    Arc::clone(&client),
                    spool.to_path_buf(),
                );
                std::thread::spawn(move || worker(&shared, &client, &spool))
            })
            .collect();
        Prefetch { shared, workers }
    }

    /// Whether `digest` is one of the blobs this pool fetches (and was not taken yet).
    pub fn has(&self, digest: &Digest) -> bool {
        self.lock().slots.contains_key(digest)
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, State> {
        self.shared
            .state
            .lock()
            .expect("lock poisoned only by a panic")
    }

    /// Waits for `digest` and opens its spooled file (unlinked at once: the open file is all
    /// that is needed, and nothing is left behind). `None` if the pool does not fetch it.
    ///
    /// # Errors
    /// The download failed.
    pub fn take(&self, digest: &Digest) -> Option<Result<BlobReader>> {
        let mut state = self.lock();
        while let Slot::Waiting = state.slots.get(digest)? {
            state = self
                .shared
                .ready
                .wait(state)
                .expect("lock poisoned only by a panic");
        }
        let Some(Slot::Done(result)) = state.slots.remove(digest) else {
            unreachable!("checked above");
        };
        Some(result.and_then(|path| {
            let f = File::open(&path).map_err(Error::io(format!("opening {}", path.display())))?;
            let _ = fs::remove_file(&path);
            Ok(Box::new(io::BufReader::with_capacity(BUF, f)) as BlobReader)
        }))
    }
}

fn worker(shared: &Shared, client: &Client, spool: &Path) {
    loop {
        let next = {
            let mut s = shared.state.lock().expect("lock poisoned only by a panic");
            s.queue.pop_front()
        };
        let Some((digest, size)) = next else { return };
        if shared.cancel.load(Ordering::Relaxed) {
            return;
        }
        let result = download(client, &digest, size, spool, &shared.cancel);
        let mut s = shared.state.lock().expect("lock poisoned only by a panic");
        if let Some(slot) = s.slots.get_mut(&digest) {
            *slot = Slot::Done(result);
        }
        shared.ready.notify_all();
    }
}

impl Drop for Prefetch {
    fn drop(&mut self) {
        self.shared.cancel.store(true, Ordering::Relaxed);
        self.lock().queue.clear();
        for w in self.workers.drain(..) {
            let _ = w.join();
        }
    }
}

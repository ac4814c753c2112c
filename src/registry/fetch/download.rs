//! One blob from the registry into the spool: resumed with `Range` requests, hashed as it is
//! written, renamed complete only when its digest matches. A place that fails on the blob
//! hands it to the next place, which resumes from what the first one delivered.

use std::fs::{self, File, OpenOptions};
use std::io::{self, Read, Seek, SeekFrom, Write};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};

use ureq::http::Method;

use super::BUF;
use super::spool::{SpoolLock, Spooled, private_paths, spool_err, spool_paths};
use crate::digest::{Digest, Hasher};
use crate::error::{Error, Result};
use crate::registry::client::{ATTEMPTS, Client, Payload, backoff};
use crate::registry::places::Places;

/// Why one transfer attempt stopped.
enum Stop {
    /// The connection broke or timed out: resume from where the file ends.
    Transient(String),
    /// Anything else: give up.
    Fatal(Error),
}

/// What a download is watched and stopped by.
#[allow(missing_debug_implementations)] // closures
pub struct Watch<'a> {
    /// Set to stop the download.
    pub cancel: &'a AtomicBool,
    /// Told where the download is.
    pub progress: &'a dyn Fn(Progress),
    /// Whether a reader is following the download (it has read bytes of the partial file
    /// that a fresh start would replace). Then a download whose bytes do not match is not
    /// started over, here or at another place: the reader has them already.
    pub followed: &'a dyn Fn() -> bool,
}

/// Downloads blob `digest` of `size` bytes into `spool` from the first of `places` that
/// delivers it, resuming a partial file; returns the path of the verified complete file.
/// While another download (another process, or another pool of this one) owns the blob's
/// spool files, this one uses private names and keeps nothing for a later run.
///
/// The lock on the shared names is held until the returned [`Spooled`] is dropped, so that
/// the file is not taken over before it has been read.
///
/// # Errors
/// Every place fails past the retries, or delivers content that does not match `digest`
/// (after one fresh download when a resumed one did not match); or a followed download's
/// content does not match.
pub fn download(
    places: &Places,
    digest: &Digest,
    size: u64,
    spool: &Path,
    watch: &Watch<'_>,
) -> Result<Spooled> {
    let io_err = |p: &Path| spool_err(digest, p);
    fs::create_dir_all(spool).map_err(io_err(spool))?;
    // Another pull of the same blob (into this repository) owns the shared names: download
    // under private ones rather than write into the same file, and keep nothing of them.
    let lock = SpoolLock::acquire(spool, digest).map_err(io_err(spool))?;
    let Some(lock) = lock else {
        let (done, partial) = private_paths(spool, digest);
        let r = download_from(places, digest, size, (&done, &partial), watch);
        if r.is_err() {
            let _ = fs::remove_file(&partial);
        }
        return r.map(|path| Spooled { path, _lock: None });
    };
    let (done, partial) = spool_paths(spool, digest);
    download_from(places, digest, size, (&done, &partial), watch).map(|path| Spooled {
        path,
        _lock: Some(lock),
    })
}

/// [`download`] into the files `done` and `partial`, from each place in turn until one
/// delivers; the next place resumes from what the failed one wrote. When nothing is left to
/// resume from (the bytes did not match) and a reader has read some, no other place is asked:
/// its bytes could not mend what was read.
fn download_from(
    places: &Places,
    digest: &Digest,
    size: u64,
    files: (&Path, &Path),
    watch: &Watch<'_>,
) -> Result<PathBuf> {
    check_room(digest, size, files)?;
    let stop = |e: &Error| {
        matches!(e, Error::Io { .. })
            || watch.cancel.load(Ordering::Relaxed)
            || ((watch.followed)() && !files.1.exists())
    };
    let (_, path) = places.first_ok_with(
        |client| download_to(client, digest, size, files, watch),
        stop,
    )?;
    Ok(path)
}

/// Refuses a download the spool's file system has no room for: what `size` lacks beyond
/// the bytes of `files` already there is more than is free. A registry's descriptor cannot
/// fill the disk (nor leave a partial file of that size behind "for resuming").
fn check_room(digest: &Digest, size: u64, (done, partial): (&Path, &Path)) -> Result<()> {
    let have = [done, partial]
        .iter()
        .filter_map(|p| fs::metadata(p).ok())
        .map(|m| m.len())
        .max()
        .unwrap_or(0);
    let need = size.saturating_sub(have);
    let dir = partial.parent().unwrap_or(Path::new("."));
    let free = crate::repo::free_space(dir).map_err(spool_err(digest, dir))?;
    if need > free {
        let why =
            format!("it needs {need} more bytes and {free} are free (the blob is {size} bytes)");
        return Err(spool_err(digest, dir)(io::Error::new(
            io::ErrorKind::StorageFull,
            why,
        )));
    }
    Ok(())
}

/// [`download`] from one place into the files `done` and `partial`.
fn download_to(
    client: &Client,
    digest: &Digest,
    size: u64,
    (done, partial): (&Path, &Path),
    watch: &Watch<'_>,
) -> Result<PathBuf> {
    let (cancel, progress) = (watch.cancel, watch.progress);
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
        if resumed && !fresh_retry && !(watch.followed)() {
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

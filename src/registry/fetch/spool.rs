//! The spool: where a registry blob is downloaded (`ALG-HEX.partial`, then `ALG-HEX`), and
//! who owns those names (`ALG-HEX.lock`) while a download and its import run.

use std::fs::{self, OpenOptions};
use std::io;
use std::path::{Path, PathBuf};
use std::sync::atomic::Ordering;

use crate::digest::Digest;
use crate::error::Error;

/// The spool file names of a blob: (complete, partial).
pub fn spool_paths(spool: &Path, digest: &Digest) -> (PathBuf, PathBuf) {
    let base = format!("{}-{}", digest.algorithm(), digest.encoded());
    (spool.join(&base), spool.join(format!("{base}.partial")))
}

/// Ownership of a blob's shared spool files: `ALG-HEX.lock`, held with `flock(2)` and removed
/// on drop. The kernel drops a `flock` with its process, so a killed download never leaves a
/// lock behind, and a second open of the file (this process included) is refused while it is
/// held.
#[derive(Debug)]
pub(super) struct SpoolLock {
    path: PathBuf,
    _file: fs::File,
}

impl SpoolLock {
    /// Takes the lock, or `None` while another download (of any process) holds it.
    pub(super) fn acquire(spool: &Path, digest: &Digest) -> io::Result<Option<SpoolLock>> {
        use rustix::fs::{FlockOperation, flock, fstat, stat};
        let path = spool.join(format!("{}-{}.lock", digest.algorithm(), digest.encoded()));
        loop {
            let file = OpenOptions::new()
                .write(true)
                .create(true)
                .truncate(false)
                .open(&path)?;
            match flock(&file, FlockOperation::NonBlockingLockExclusive) {
                Ok(()) => {}
                Err(rustix::io::Errno::WOULDBLOCK) => return Ok(None),
                Err(e) => return Err(e.into()),
            }
            // The previous holder unlinks the file before letting go: a lock taken on an
            // unlinked file guards nothing, so open the name again.
            let held = fstat(&file)?;
            match stat(&path) {
                Ok(now) if (now.st_dev, now.st_ino) == (held.st_dev, held.st_ino) => {
                    return Ok(Some(SpoolLock { path, _file: file }));
                }
                Ok(_) | Err(rustix::io::Errno::NOENT) => continue,
                Err(e) => return Err(e.into()),
            }
        }
    }
}

impl Drop for SpoolLock {
    fn drop(&mut self) {
        // unlink while still holding the lock; the file closes (and unlocks) after
        let _ = fs::remove_file(&self.path);
    }
}

/// A downloaded, verified blob in the spool. While it lives, no other download (of any
/// process) touches the file; dropping it leaves the file for a later run.
#[derive(Debug)]
pub struct Spooled {
    /// The complete file.
    pub path: PathBuf,
    /// The lock on the blob's shared spool names, if it has them.
    pub(super) _lock: Option<SpoolLock>,
}

/// Spool names private to this download, for when another download holds the shared ones.
pub(super) fn private_paths(spool: &Path, digest: &Digest) -> (PathBuf, PathBuf) {
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
pub(super) fn spool_err(digest: &Digest, p: &Path) -> impl FnOnce(io::Error) -> Error + use<> {
    let context = format!("spooling blob {digest} to {}", p.display());
    move |cause| Error::Io { context, cause }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn spool_lock_is_exclusive_and_a_leftover_file_is_no_lock() {
        let dir = tempfile::tempdir().unwrap();
        let d = Digest::sha256_of(b"x");
        let held = SpoolLock::acquire(dir.path(), &d).unwrap().unwrap();
        assert!(SpoolLock::acquire(dir.path(), &d).unwrap().is_none());
        drop(held);
        // a lock file left by a process that was killed: nobody holds a flock on it
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

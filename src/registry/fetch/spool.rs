//! The spool: where a registry blob is downloaded (`ALG-HEX.partial`, then `ALG-HEX`), and
//! who owns those names (`ALG-HEX.lock`) while a download and its import run.

use std::fs::{self, OpenOptions};
use std::io::{self, Write};
use std::path::{Path, PathBuf};
use std::sync::atomic::Ordering;

use crate::digest::Digest;
use crate::error::Error;

/// The spool file names of a blob: (complete, partial).
pub fn spool_paths(spool: &Path, digest: &Digest) -> (PathBuf, PathBuf) {
    let base = format!("{}-{}", digest.algorithm(), digest.encoded());
    (spool.join(&base), spool.join(format!("{base}.partial")))
}

/// Ownership of a blob's shared spool files: `ALG-HEX.lock`, created exclusively, holding
/// the owner's process id, removed on drop. A lock whose process is gone is taken over.
#[derive(Debug)]
pub(super) struct SpoolLock(PathBuf);

impl SpoolLock {
    /// Takes the lock, or `None` while a live process (this one included) holds it.
    pub(super) fn acquire(spool: &Path, digest: &Digest) -> io::Result<Option<SpoolLock>> {
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

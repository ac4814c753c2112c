//! ocitree's repository lock: `REPO/ocitree.lock`, held with `flock(2)`.
//!
//! Commands that add or remove refs (`import`, `rm`) hold it shared from before they look at
//! the repository's refs until their refs are written; `prune` holds it exclusive for its whole
//! run. So `prune` never sees a repository in which an import has found a layer present but not
//! yet committed the image that uses it, and never deletes what a running import relies on.
//! Several imports and removals run side by side; `prune` waits for them, and they wait for it.
//!
//! The lock is ocitree's own, beside libostree's `REPO/.lock` (which libostree takes only for
//! the span of a transaction or of its own prune, and gives up after
//! `core.lock-timeout-secs`): a prune waiting for a long import must not time out, and
//! libostree's summary regeneration (exclusive on `.lock`) must not wait for ocitree's own
//! shared holders. A `flock` dies with its process, so a killed command never leaves the lock
//! held. While it deletes objects, `prune` also holds libostree's lock exclusive
//! ([`LibostreeLock`]), as libostree's own prune does, so that no transaction of another
//! program (`ostree commit`, `ostree pull`) finds an object present that is being deleted.

use std::fs::File;
use std::path::{Path, PathBuf};

use rustix::fs::{FlockOperation, flock};

use crate::error::{Error, Result};

/// The lock file's name inside the repository.
pub const LOCK_FILE: &str = "ocitree.lock";

/// A held repository lock; released on drop (or when the process ends, however it ends).
#[derive(Debug)]
pub struct RepoLock {
    _file: File,
    exclusive: bool,
}

impl RepoLock {
    /// Takes the lock shared, waiting while a `prune` holds it.
    ///
    /// # Errors
    /// The lock file cannot be opened or locked.
    pub fn shared(repo: &Path) -> Result<RepoLock> {
        Self::take(repo, false, || {})
    }

    /// Takes the lock shared for a command that only reads the repository (`export`,
    /// `encapsulate`), so that a `prune` does not delete what it is reading. `None` when the
    /// lock file cannot be created because the repository is not writable by this user (a
    /// server's repository read by another account): such a reader goes on unlocked.
    ///
    /// # Errors
    /// The lock file cannot be opened or locked for another reason.
    pub fn reading(repo: &Path) -> Result<Option<RepoLock>> {
        match Self::take(repo, false, || {}) {
            Ok(l) => Ok(Some(l)),
            Err(Error::Io { cause, .. })
                if matches!(
                    cause.kind(),
                    std::io::ErrorKind::PermissionDenied | std::io::ErrorKind::ReadOnlyFilesystem
                ) =>
            {
                Ok(None)
            }
            Err(e) => Err(e),
        }
    }

    /// Takes the lock exclusive. When another command holds it, calls `on_wait` once and waits.
    ///
    /// # Errors
    /// The lock file cannot be opened or locked.
    pub fn exclusive(repo: &Path, on_wait: impl FnOnce()) -> Result<RepoLock> {
        Self::take(repo, true, on_wait)
    }

    /// Whether this is the exclusive lock.
    pub fn is_exclusive(&self) -> bool {
        self.exclusive
    }

    fn take(repo: &Path, exclusive: bool, on_wait: impl FnOnce()) -> Result<RepoLock> {
        let path = lock_path(repo);
        let err = |what: &str| Error::io(format!("{what} {}", path.display()));
        let file = std::fs::OpenOptions::new()
            .read(true)
            .write(true)
            .create(true)
            .truncate(false)
            .open(&path)
            .map_err(err("opening"))?;
        let (now, wait) = if exclusive {
            (
                FlockOperation::NonBlockingLockExclusive,
                FlockOperation::LockExclusive,
            )
        } else {
            (
                FlockOperation::NonBlockingLockShared,
                FlockOperation::LockShared,
            )
        };
        match flock(&file, now) {
            Ok(()) => {}
            Err(e) if e == rustix::io::Errno::WOULDBLOCK => {
                on_wait();
                flock(&file, wait).map_err(|e| err("locking")(e.into()))?;
            }
            Err(e) => return Err(err("locking")(e.into())),
        }
        Ok(RepoLock {
            _file: file,
            exclusive,
        })
    }
}

/// libostree's own repository lock, `REPO/.lock`, held exclusive: what libostree's prune holds
/// while it deletes objects, and what every libostree transaction (of any program) holds
/// shared. Taken with a POSIX record lock, which conflicts with the open file description
/// locks libostree takes, in other processes and in this one. Waits as long as it takes.
///
/// Hold it only around calls that take no libostree lock themselves (listing refs and
/// objects, traversing and deleting objects): a libostree call in this process that pushes
/// its own lock would wait on this one (`core.lock-timeout-secs`, then fail).
#[derive(Debug)]
pub struct LibostreeLock {
    _file: File,
}

impl LibostreeLock {
    /// Takes `REPO/.lock` exclusive, waiting for running transactions.
    ///
    /// # Errors
    /// The lock file cannot be opened or locked.
    pub fn exclusive(repo: &Path) -> Result<LibostreeLock> {
        use std::os::unix::fs::OpenOptionsExt;
        let path = repo.join(".lock");
        let file = std::fs::OpenOptions::new()
            .read(true)
            .write(true)
            .create(true)
            .truncate(false)
            .mode(0o644)
            .open(&path)
            .map_err(Error::io(format!("opening {}", path.display())))?;
        rustix::fs::fcntl_lock(&file, FlockOperation::LockExclusive)
            .map_err(|e| Error::io(format!("locking {}", path.display()))(e.into()))?;
        Ok(LibostreeLock { _file: file })
    }
}

/// `REPO/ocitree.lock`.
pub fn lock_path(repo: &Path) -> PathBuf {
    repo.join(LOCK_FILE)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn shared_holders_coexist_and_exclusive_waits_for_them() {
        let dir = tempfile::tempdir().unwrap();
        let a = RepoLock::shared(dir.path()).unwrap();
        let b = RepoLock::shared(dir.path()).unwrap();
        assert!(!a.is_exclusive() && !b.is_exclusive());
        let (tx, rx) = std::sync::mpsc::channel();
        let path = dir.path().to_path_buf();
        let waiter = std::thread::spawn(move || {
            let waited = std::cell::Cell::new(false);
            let l = RepoLock::exclusive(&path, || waited.set(true)).unwrap();
            tx.send(()).unwrap();
            (l.is_exclusive(), waited.get())
        });
        // The exclusive lock is not granted while a shared one is held.
        assert!(
            rx.recv_timeout(std::time::Duration::from_millis(300))
                .is_err()
        );
        drop(a);
        assert!(
            rx.recv_timeout(std::time::Duration::from_millis(100))
                .is_err()
        );
        drop(b);
        rx.recv_timeout(std::time::Duration::from_secs(10)).unwrap();
        assert_eq!(waiter.join().unwrap(), (true, true));
    }
}

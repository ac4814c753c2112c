//! libostree's transaction staging directories, `REPO/tmp/staging-BOOTID-XXXXXX`.
//!
//! Every object a transaction writes goes there first; committing the transaction renames them
//! into `objects/`. libostree holds a POSIX record lock (an open file description lock,
//! `F_OFD_SETLK`) on `REPO/tmp/staging-…-lock` while a transaction uses the directory. An
//! aborted transaction keeps its directory for a later one of the same boot to reuse, so a
//! failed or killed import leaves everything it wrote there: on a full disk, the space stays
//! taken. [`remove_unused`] deletes every staging directory whose lock it can take (no running
//! transaction holds it) exactly as libostree's own tmp cleanup does, keeping the lock until
//! the directory is gone.

use std::fs::File;
use std::os::unix::fs::{MetadataExt, OpenOptionsExt};
use std::path::Path;

use rustix::fs::{FlockOperation, fcntl_lock};

use crate::error::{Error, Result};

/// The prefix of libostree's staging directory names.
pub const STAGING_PREFIX: &str = "staging-";

/// What [`remove_unused`] deleted.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Removed {
    /// Staging directories deleted.
    pub dirs: usize,
    /// Bytes of the files in them.
    pub bytes: u64,
}

/// Deletes every staging directory in `tmp` (the repository's `tmp/`) that no transaction
/// holds. A directory in use by a running transaction (of this or any process) is left alone.
///
/// # Errors
/// Reading `tmp` or deleting a directory fails.
pub fn remove_unused(tmp: &Path) -> Result<Removed> {
    let mut removed = Removed::default();
    let entries = match std::fs::read_dir(tmp) {
        Ok(e) => e,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(removed),
        Err(e) => return Err(Error::io(format!("reading {}", tmp.display()))(e)),
    };
    for e in entries {
        let e = e.map_err(Error::io(format!("reading {}", tmp.display())))?;
        let name = e.file_name();
        let name = name.to_string_lossy();
        if !name.starts_with(STAGING_PREFIX) || name.ends_with("-lock") {
            continue;
        }
        if !e.file_type().is_ok_and(|t| t.is_dir()) {
            continue;
        }
        if let Some(bytes) = remove_if_unused(tmp, &name)? {
            removed.dirs += 1;
            removed.bytes += bytes;
        }
    }
    Ok(removed)
}

/// Locks `NAME-lock` as libostree does; when no one else holds it, deletes the directory (then
/// the lock file, still holding the lock) and returns the bytes freed.
fn remove_if_unused(tmp: &Path, name: &str) -> Result<Option<u64>> {
    let dir = tmp.join(name);
    let lock_path = tmp.join(format!("{name}-lock"));
    let io = |what: &str, p: &Path| Error::io(format!("{what} {}", p.display()));
    let lock = std::fs::OpenOptions::new()
        .read(true)
        .write(true)
        .create(true)
        .truncate(false)
        .mode(0o600)
        .custom_flags(libc::O_NOFOLLOW)
        .open(&lock_path)
        .map_err(io("opening", &lock_path))?;
    if !try_lock(&lock).map_err(io("locking", &lock_path))? {
        return Ok(None);
    }
    // The previous owner may have deleted directory and lock file between our listing and
    // our lock; then there is nothing left to do but drop the lock file we just made.
    let linked = lock.metadata().map_err(io("reading", &lock_path))?.nlink() > 0;
    let bytes = if linked && dir.is_dir() {
        let bytes = tree_bytes(&dir);
        std::fs::remove_dir_all(&dir).map_err(io("removing", &dir))?;
        Some(bytes)
    } else {
        None
    };
    if linked {
        std::fs::remove_file(&lock_path).map_err(io("removing", &lock_path))?;
    }
    drop(lock);
    Ok(bytes)
}

/// Takes an exclusive record lock without waiting; `false` when another holds it.
fn try_lock(f: &File) -> std::io::Result<bool> {
    match fcntl_lock(f, FlockOperation::NonBlockingLockExclusive) {
        Ok(()) => Ok(true),
        Err(e) if e == rustix::io::Errno::AGAIN || e == rustix::io::Errno::ACCESS => Ok(false),
        Err(e) => Err(e.into()),
    }
}

/// The sizes of the regular files under `dir` (what deleting it frees, give or take blocks).
fn tree_bytes(dir: &Path) -> u64 {
    let mut total = 0;
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        let Ok(entries) = std::fs::read_dir(&d) else {
            continue;
        };
        for e in entries.flatten() {
            match e.metadata() {
                Ok(m) if m.is_dir() => stack.push(e.path()),
                Ok(m) if m.is_file() => total += m.len(),
                _ => {}
            }
        }
    }
    total
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn unused_staging_dirs_and_their_lock_files_go_other_entries_stay() {
        let tmp = tempfile::tempdir().unwrap();
        let t = tmp.path();
        for d in ["staging-boot-a", "staging-boot-free", "other"] {
            std::fs::create_dir(t.join(d)).unwrap();
            std::fs::write(t.join(d).join("obj"), b"12345").unwrap();
        }
        let removed = remove_unused(t).unwrap();
        assert_eq!(removed.dirs, 2);
        assert_eq!(removed.bytes, 10);
        assert!(t.join("other/obj").exists());
        assert!(!t.join("staging-boot-free").exists());
        assert!(!t.join("staging-boot-free-lock").exists());
        // (A staging directory a running transaction holds is kept: tests/it/faults.rs.)
    }
}

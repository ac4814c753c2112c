//! Staging: an export destination is complete and valid, or as it was before.
//!
//! Everything an export writes goes first into a staging directory whose `owner` file the
//! exporting process holds locked (`flock`, released however the process ends, as the
//! repository lock, [`crate::repo::RepoLock`]):
//! - a new `oci:` directory is built in a sibling `.NAME.ocitree-tmp-XXXXXX` and renamed into
//!   place at the end (if another export made it meanwhile, added to as an existing layout);
//! - an existing layout gets its staging directory inside (`DIR/.ocitree-tmp-XXXXXX`): new
//!   blobs are renamed into `blobs/sha256` at the end, then `index.json` is replaced by a
//!   rename, so it only ever names complete blobs (under a lock on the layout directory, so
//!   that concurrent exports keep each other's tags);
//! - an archive file is built in a sibling staging directory and renamed onto the file (onto
//!   a symlink's target);
//! - standard output, a FIFO or a character device is staged in the temporary directory
//!   (`ocitree-export-XXXXXX`) and written into at the end.
//!
//! A staging directory left by a killed export is removed by the next export to the same
//! destination ([`clean_stale`]): nobody holds its lock any more, while a running export does.

use std::fs::{self, File};
use std::path::{Path, PathBuf};
use std::time::{Duration, SystemTime};

use rustix::fs::{FlockOperation, flock};

use crate::error::{Error, Result};

/// What staging directories start with, after a leading `.NAME` for siblings.
pub const MARK: &str = ".ocitree-tmp-";
/// The prefix of staging directories for standard output, FIFOs and devices, in the temporary
/// directory.
pub const STDOUT_PREFIX: &str = "ocitree-export-";
/// The file in a staging directory that its export holds locked.
const OWNER: &str = "owner";
/// What the owner file is called until it is locked.
const OWNER_NEW: &str = "owner.new";
/// A staging directory without an owner file is only removed when older than this (it may be
/// one being created right now).
const UNLOCKED_GRACE: Duration = Duration::from_secs(60);

fn io(what: &Path) -> impl FnOnce(std::io::Error) -> Error + '_ {
    move |e| Error::Io {
        context: format!("staging in {}", what.display()),
        cause: e,
    }
}

/// A staging directory, removed when dropped; its `owner` file is locked while it lives.
#[derive(Debug)]
pub struct Stage {
    // Declared first: dropped (the directory removed) before the lock is let go.
    dir: tempfile::TempDir,
    _owner: File,
}

impl Stage {
    /// A new staging directory in `parent`, named `prefix` and random characters.
    ///
    /// # Errors
    /// It cannot be created or locked.
    pub fn new_in(parent: &Path, prefix: &str) -> Result<Stage> {
        let dir = tempfile::Builder::new()
            .prefix(prefix)
            .tempdir_in(parent)
            .map_err(io(parent))?;
        // The owner file is locked before it gets its name: an `owner` that a concurrent
        // export's `clean_stale` could open between its creation and its lock would look
        // stale, and this staging directory would be removed under this export. (Without an
        // `owner` yet, the directory is too young to be stale.)
        let owner = dir.path().join(OWNER);
        let new = dir.path().join(OWNER_NEW);
        let file = File::create(&new).map_err(io(&new))?;
        flock(&file, FlockOperation::NonBlockingLockExclusive).map_err(|e| io(&new)(e.into()))?;
        fs::rename(&new, &owner).map_err(io(&owner))?;
        Ok(Stage { dir, _owner: file })
    }

    /// Its path.
    pub fn path(&self) -> &Path {
        self.dir.path()
    }
}

/// The directory and name prefix of the sibling staging directories of `dest`.
pub fn sibling(dest: &Path) -> (PathBuf, String) {
    let parent = match dest.parent() {
        Some(p) if !p.as_os_str().is_empty() => p.to_path_buf(),
        _ => PathBuf::from("."),
    };
    let name = dest
        .file_name()
        .map_or_else(|| "export".into(), |n| n.to_string_lossy().into_owned());
    (parent, format!(".{name}{MARK}"))
}

/// Removes the staging directories named `prefix…` in `dir` that no running export holds,
/// and what killed exports of older ocitree versions left in a layout `dir` (`.tmpXXXXXX`
/// files in `blobs/sha256`). A missing `dir` has nothing to clean.
///
/// # Errors
/// A stale staging directory cannot be removed.
pub fn clean_stale(dir: &Path, prefix: &str) -> Result<()> {
    let Ok(entries) = fs::read_dir(dir) else {
        return Ok(());
    };
    for e in entries.flatten() {
        let name = e.file_name();
        let Some(name) = name.to_str() else { continue };
        if !name.starts_with(prefix) || !e.file_type().is_ok_and(|t| t.is_dir()) {
            continue;
        }
        if is_stale(&e.path()) {
            fs::remove_dir_all(e.path()).map_err(io(&e.path()))?;
        }
    }
    let blobs = dir.join("blobs/sha256");
    if let Ok(entries) = fs::read_dir(&blobs) {
        for e in entries.flatten() {
            let name = e.file_name();
            let legacy = name.to_str().is_some_and(|n| {
                n.len() == 10
                    && n.starts_with(".tmp")
                    && n[4..].bytes().all(|b| b.is_ascii_alphanumeric())
            });
            if legacy && e.file_type().is_ok_and(|t| t.is_file()) {
                fs::remove_file(e.path()).map_err(io(&e.path()))?;
            }
        }
    }
    Ok(())
}

/// Whether no export holds the staging directory `dir`: nobody holds its `owner` lock (one
/// without an owner file is stale once older than [`UNLOCKED_GRACE`]: it may be being made).
fn is_stale(dir: &Path) -> bool {
    match File::open(dir.join(OWNER)) {
        // A lock taken here is released with the file, at once.
        Ok(f) => flock(&f, FlockOperation::NonBlockingLockExclusive).is_ok(),
        Err(_) => fs::metadata(dir).and_then(|m| m.modified()).is_ok_and(|t| {
            SystemTime::now()
                .duration_since(t)
                .is_ok_and(|age| age > UNLOCKED_GRACE)
        }),
    }
}

/// A scratch OCI layout in a new directory under `dir` (its name starting with `prefix`),
/// removed when the returned handle is dropped: where an export to a registry or an index is
/// assembled before it is pushed or renamed into place.
///
/// # Errors
/// The directory cannot be created.
pub fn scratch_layout(
    dir: &Path,
    prefix: &str,
) -> Result<(tempfile::TempDir, crate::source::SourceRef)> {
    // 0777 less the umask, as `mkdir` makes it (an index export renames it into place; a
    // temporary directory's own 0700 would keep the layout from other users).
    let scratch = tempfile::Builder::new()
        .prefix(prefix)
        .permissions(std::os::unix::fs::PermissionsExt::from_mode(0o777))
        .tempdir_in(dir)
        .map_err(Error::io(format!(
            "creating a directory in {}",
            dir.display()
        )))?;
    let layout = crate::source::SourceRef::OciDir {
        path: scratch.path().to_path_buf(),
        selector: crate::source::Selector::Default,
    };
    Ok((scratch, layout))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A stage of a live export stays; one whose process is gone is removed, and so are
    /// old-style temporary blobs; nothing else is touched.
    #[test]
    fn cleans_only_stale_stages() {
        let t = tempfile::tempdir().unwrap();
        let dest = t.path().join("out");
        let (parent, prefix) = sibling(&dest);
        assert_eq!(prefix, ".out.ocitree-tmp-");
        let live = Stage::new_in(&parent, &prefix).unwrap();
        let dead = Stage::new_in(&parent, &prefix).unwrap();
        // what a killed export leaves: the directory, its lock gone with the process
        let Stage { dir, _owner } = dead;
        drop(_owner);
        let dead_path = dir.keep();
        fs::create_dir_all(t.path().join("blobs/sha256")).unwrap();
        fs::write(t.path().join("blobs/sha256/.tmpAb12Cd"), b"partial").unwrap();
        fs::write(t.path().join("blobs/sha256/0123"), b"blob").unwrap();
        fs::write(t.path().join(".out.other"), b"keep").unwrap();
        clean_stale(&parent, &prefix).unwrap();
        assert!(live.path().exists());
        assert!(!dead_path.exists());
        assert!(!t.path().join("blobs/sha256/.tmpAb12Cd").exists());
        assert!(t.path().join("blobs/sha256/0123").exists());
        assert!(t.path().join(".out.other").exists());
    }
}

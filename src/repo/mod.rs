//! Opening and creating repositories, and keeping them whole: ocitree's repository lock
//! ([`lock`]) and the cleanup of libostree's transaction staging directories ([`staging`]).

pub mod collection;
pub mod lock;
pub mod partial;
pub mod prune;
pub mod staging;

pub use lock::RepoLock;

use std::path::{Path, PathBuf};

use ostree::gio::prelude::*;
use ostree::{Repo, RepoMode, gio};

use crate::error::{Error, Result};

/// The default repository path: `$XDG_DATA_HOME/ocitree/repo`, else `~/.local/share/ocitree/repo`.
pub fn default_path() -> PathBuf {
    let data = std::env::var_os("XDG_DATA_HOME")
        .filter(|v| !v.is_empty())
        .map(PathBuf::from)
        .or_else(|| std::env::var_os("HOME").map(|h| PathBuf::from(h).join(".local/share")))
        .unwrap_or_else(|| PathBuf::from("."));
    data.join("ocitree/repo")
}

/// Why a `bare-user-only` repository cannot hold images.
const BARE_USER_ONLY: &str = "a bare-user-only repository keeps no owners, extended \
    attributes or setuid/setgid bits, so an image's tree cannot be stored in it whole (its \
    files would no longer match their checksums); use bare-user, or archive to serve it";

/// Parses a mode name as `ostree init --mode` spells it: the modes that can hold images.
///
/// # Errors
/// [`Error::Invalid`] for an unknown mode, or `bare-user-only` ([`check_holds_images`]).
pub fn parse_mode(s: &str) -> Result<RepoMode> {
    let invalid = |reason: &str| Error::Invalid {
        what: format!("repo mode {s:?}"),
        reason: reason.into(),
    };
    match s {
        "bare-user" => Ok(RepoMode::BareUser),
        "bare" => Ok(RepoMode::Bare),
        "archive" | "archive-z2" => Ok(RepoMode::Archive),
        "bare-user-only" => Err(invalid(BARE_USER_ONLY)),
        _ => Err(invalid("repo mode must be bare-user, bare or archive")),
    }
}

/// Refuses a repository that cannot store image trees whole: `bare-user-only` (as `ostree
/// init` makes it) drops owners, extended attributes and setuid/setgid bits, and libostree
/// would store files that no longer match their checksums.
///
/// # Errors
/// [`Error::Invalid`] naming the repository.
pub fn check_holds_images(repo: &Repo) -> Result<()> {
    match repo.mode() {
        RepoMode::BareUserOnly => Err(Error::Invalid {
            what: format!("repo {}", dir(repo).display()),
            reason: BARE_USER_ONLY.into(),
        }),
        _ => Ok(()),
    }
}

/// Opens the repository at `path`, creating it in `mode` if it does not exist.
///
/// A new repository is made only in an empty directory or as a new directory whose parent
/// exists: an existing directory holding other files is not turned into a repository beside
/// them, and a mistyped path does not grow a chain of new directories.
///
/// # Errors
/// [`Error::NotARepository`] for a non-empty directory or a file that is not a repository, or
/// a missing parent; libostree fails.
pub fn open_or_create(path: &Path, mode: RepoMode) -> Result<Repo> {
    let repo = Repo::new_for_path(path);
    if path.join("config").exists() {
        repo.open(gio::Cancellable::NONE)
            .map_err(Error::ostree(format!("opening repo {}", path.display())))?;
        return Ok(repo);
    }
    check_creatable(path)?;
    match std::fs::create_dir(path) {
        Ok(()) => {}
        Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => {}
        Err(e) => return Err(Error::io(format!("creating {}", path.display()))(e)),
    }
    repo.create(mode, gio::Cancellable::NONE)
        .map_err(Error::ostree(format!("creating repo {}", path.display())))?;
    Ok(repo)
}

/// Whether a repository may be created at `path` (which holds none): it is an empty
/// directory, or it does not exist and its parent directory does.
fn check_creatable(path: &Path) -> Result<()> {
    let refuse = |reason: String| Error::NotARepository {
        path: path.display().to_string(),
        reason,
    };
    match std::fs::symlink_metadata(path) {
        Ok(m) if m.is_dir() || path.is_dir() => {
            let mut entries = std::fs::read_dir(path)
                .map_err(Error::io(format!("reading {}", path.display())))?;
            if entries.next().is_some() {
                return Err(refuse(
                    "the directory is not empty; a new repository is created only in an empty or new directory".into(),
                ));
            }
            Ok(())
        }
        Ok(_) => Err(refuse("it is not a directory".into())),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            let parent = path
                .parent()
                .filter(|p| !p.as_os_str().is_empty())
                .unwrap_or(Path::new("."));
            if parent.is_dir() {
                Ok(())
            } else {
                Err(refuse(format!(
                    "its parent directory {} does not exist (create it first if the path is right)",
                    parent.display()
                )))
            }
        }
        Err(e) => Err(Error::io(format!("reading {}", path.display()))(e)),
    }
}

/// The bytes this process may still write on the file system holding `path` (root may use
/// the blocks reserved for it).
///
/// # Errors
/// The file system cannot be asked.
pub(crate) fn free_space(path: &Path) -> std::io::Result<u64> {
    let s = rustix::fs::statvfs(path)?;
    let blocks = if rustix::process::getuid().is_root() {
        s.f_bfree
    } else {
        s.f_bavail
    };
    Ok(blocks.saturating_mul(s.f_frsize))
}

/// The repository's own directory.
pub fn dir(repo: &Repo) -> PathBuf {
    repo.path().path().unwrap_or_else(|| PathBuf::from("."))
}

/// Opens an existing repository.
///
/// # Errors
/// It does not exist or libostree fails.
pub fn open(path: &Path) -> Result<Repo> {
    if !path.join("config").exists() {
        return Err(Error::NotFound(format!(
            "repository {} (import an image or run `ocitree init` first)",
            path.display()
        )));
    }
    let repo = Repo::new_for_path(path);
    repo.open(gio::Cancellable::NONE)
        .map_err(Error::ostree(format!("opening repo {}", path.display())))?;
    Ok(repo)
}

/// Writes the tree `root` and a commit of it with `subject`, `metadata` and `timestamp` (no
/// parent); returns the commit checksum. The one place ocitree writes commits.
///
/// # Errors
/// libostree fails.
pub fn write_tree_commit(
    repo: &Repo,
    root: &ostree::MutableTree,
    subject: &str,
    metadata: &ostree::glib::VariantDict,
    timestamp: u64,
) -> Result<String, ostree::glib::Error> {
    let root = write_mtree(repo, root)?;
    let commit = repo.write_commit_with_time(
        None,
        Some(subject),
        None,
        Some(&metadata.end()),
        &root,
        timestamp,
        gio::Cancellable::NONE,
    )?;
    Ok(commit.to_string())
}

fn write_mtree(
    repo: &Repo,
    root: &ostree::MutableTree,
) -> Result<ostree::RepoFile, ostree::glib::Error> {
    use ostree::gio::prelude::*;
    let root = repo.write_mtree(root, gio::Cancellable::NONE)?;
    Ok(root
        .downcast::<ostree::RepoFile>()
        .expect("write_mtree returns a RepoFile"))
}

/// Writes the tree `root` (no commit); returns its (dirtree, dirmeta) checksums, ready to be
/// grafted into another tree.
///
/// # Errors
/// libostree fails.
pub fn write_tree(
    repo: &Repo,
    root: &ostree::MutableTree,
) -> Result<(String, String), ostree::glib::Error> {
    let root = write_mtree(repo, root)?;
    let contents = root.tree_get_contents_checksum().map(|c| c.to_string());
    let meta = root.tree_get_metadata_checksum().map(|c| c.to_string());
    Ok((contents.unwrap_or_default(), meta.unwrap_or_default()))
}

/// Commit `checksum` (`(a{sv}aya(say)sstayay)`) and its detached metadata (`a{sv}`), if any.
///
/// # Errors
/// The commit is missing or unreadable.
pub fn load_commit(
    repo: &Repo,
    checksum: &str,
) -> Result<(ostree::glib::Variant, Option<ostree::glib::Variant>)> {
    let (commit, _) = repo
        .load_commit(checksum)
        .map_err(Error::ostree(format!("loading commit {checksum}")))?;
    let detached = repo
        .read_commit_detached_metadata(checksum, gio::Cancellable::NONE)
        .map_err(Error::ostree(format!(
            "reading detached metadata of {checksum}"
        )))?;
    Ok((commit, detached))
}

/// The root (dirtree, dirmeta) checksums a commit object names.
pub fn commit_root(commit: &ostree::glib::Variant) -> (String, String) {
    (
        ostree::checksum_from_bytes_v(&commit.child_value(6)).to_string(),
        ostree::checksum_from_bytes_v(&commit.child_value(7)).to_string(),
    )
}

/// The repository's own `tmp` directory (same file system as the objects).
pub fn tmp_dir(repo: &Repo) -> PathBuf {
    dir(repo).join("tmp")
}

/// Where registry pulls spool blobs while they download: `REPO/tmp/ocitree-blobs` (partial
/// downloads stay there to be resumed; `ocitree prune` empties it).
pub fn blob_spool_dir(repo: &Repo) -> PathBuf {
    tmp_dir(repo).join("ocitree-blobs")
}

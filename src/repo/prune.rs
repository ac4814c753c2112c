//! Deleting objects no ref reaches, in an order that keeps the repository whole at every
//! instant.
//!
//! `ostree fsck` checks every commit object and everything its tree names, and nothing else.
//! libostree's own prune deletes unreachable objects in hash-table order, so a prune killed
//! part-way can leave a commit whose dirtree or files are gone: fsck fails until the next
//! prune. Here every unreachable commit object goes first; only then their trees, whose
//! objects no remaining commit names. Stopped at any point, the repository holds complete
//! commits and unreferenced objects, which the next prune deletes.

use std::collections::HashSet;

use ostree::{ObjectName, ObjectType, Repo, gio};

use crate::error::{Error, Result};

/// What [`prune_unreachable`] deleted.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Pruned {
    /// Objects deleted.
    pub objects: u64,
    /// Their storage size, bytes.
    pub bytes: u64,
}

/// Deletes every commit, dirtree, dirmeta and file object no ref reaches: commits first, then
/// the rest; then the `state/*.commitpartial` markers of commits that no longer exist. Commits
/// refs name that an interrupted import left marked partial are unmarked when whole
/// ([`crate::repo::partial::unmark_if_whole`]).
///
/// The caller holds the exclusive [`crate::repo::RepoLock`]: an import adds refs to objects
/// it found present, and must not find them gone. libostree's own lock is held exclusive
/// meanwhile ([`crate::repo::lock::LibostreeLock`]) for other programs' transactions.
///
/// # Errors
/// libostree fails.
pub fn prune_unreachable(repo: &Repo) -> Result<Pruned> {
    let _libostree = crate::repo::lock::LibostreeLock::exclusive(&crate::repo::dir(repo))?;
    let refs = repo
        .list_refs(None, gio::Cancellable::NONE)
        .map_err(Error::ostree("listing refs"))?;
    let mut reachable: HashSet<ObjectName> = HashSet::new();
    for commit in refs.values() {
        // Marked partial by an import killed while committing: whole, then unmarked.
        crate::repo::partial::unmark_if_whole(repo, commit)?;
        let objects = repo
            .traverse_commit(commit, -1, gio::Cancellable::NONE)
            .map_err(Error::ostree(format!("reading commit {commit}")))?;
        reachable.extend(objects);
    }
    let all = repo
        .list_objects(
            ostree::ffi::OSTREE_REPO_LIST_OBJECTS_ALL
                | ostree::ffi::OSTREE_REPO_LIST_OBJECTS_NO_PARENTS,
            gio::Cancellable::NONE,
        )
        .map_err(Error::ostree("listing objects"))?;
    let mut unreachable: Vec<&ObjectName> = all
        .keys()
        .filter(|o| deletable(o.object_type()) && !reachable.contains(*o))
        .collect();
    // Commits first (the order fsck needs); within a kind, a stable order.
    unreachable.sort_by_key(|o| {
        (
            o.object_type() != ObjectType::Commit,
            o.checksum().to_string(),
        )
    });
    let mut pruned = Pruned::default();
    for o in unreachable {
        let (kind, checksum) = (o.object_type(), o.checksum());
        pruned.bytes += repo
            .query_object_storage_size(kind, checksum, gio::Cancellable::NONE)
            .unwrap_or(0);
        // Deleting a commit deletes its detached metadata too.
        repo.delete_object(kind, checksum, gio::Cancellable::NONE)
            .map_err(Error::ostree(format!("deleting {checksum}.{kind:?}")))?;
        pruned.objects += 1;
    }
    remove_orphan_partial_markers(repo)?;
    Ok(pruned)
}

/// The object kinds a prune deletes. Detached commit metadata goes with its commit; tombstones,
/// payload links and split xattrs (which ocitree never writes) stay.
fn deletable(kind: ObjectType) -> bool {
    matches!(
        kind,
        ObjectType::Commit | ObjectType::DirTree | ObjectType::DirMeta | ObjectType::File
    )
}

/// Removes `state/CHECKSUM.commitpartial` of commits that are not in the repository.
fn remove_orphan_partial_markers(repo: &Repo) -> Result<()> {
    let state = crate::repo::dir(repo).join("state");
    let Ok(entries) = std::fs::read_dir(&state) else {
        return Ok(());
    };
    for e in entries.flatten() {
        let name = e.file_name().to_string_lossy().into_owned();
        let Some(checksum) = name.strip_suffix(".commitpartial") else {
            continue;
        };
        let present = repo
            .has_object(ObjectType::Commit, checksum, gio::Cancellable::NONE)
            .map_err(Error::ostree(format!("looking up commit {checksum}")))?;
        if !present {
            std::fs::remove_file(e.path())
                .map_err(Error::io(format!("removing {}", e.path().display())))?;
        }
    }
    Ok(())
}

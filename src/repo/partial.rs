//! Commits marked partial (`state/CHECKSUM.commitpartial`) while a transaction commits.
//!
//! Committing a libostree transaction renames the staged objects into `objects/` in directory
//! order: killed in the middle, a commit object can be in place before its dirtree, and
//! `ostree fsck` reports it ("Object missing in commits"). fsck does not verify commits marked
//! partial, so an import marks its new commits partial before committing the transaction
//! ([`mark`]) and unmarks them once it has committed ([`unmark`]). A commit left marked by a
//! kill is unmarked by the next import that uses it or the next prune ([`unmark_if_whole`]),
//! after checking that every object it names is present.

use ostree::{Repo, RepoCommitState, gio};

use crate::error::{Error, Result};

/// Marks `commits` partial.
///
/// # Errors
/// libostree fails.
pub fn mark(repo: &Repo, commits: &[String]) -> Result<()> {
    for c in commits {
        repo.mark_commit_partial(c, true)
            .map_err(Error::ostree(format!("marking commit {c} partial")))?;
    }
    Ok(())
}

/// Removes the partial marks of `commits`.
///
/// # Errors
/// libostree fails.
pub fn unmark(repo: &Repo, commits: &[String]) -> Result<()> {
    for c in commits {
        repo.mark_commit_partial(c, false)
            .map_err(Error::ostree(format!("unmarking commit {c}")))?;
    }
    Ok(())
}

/// When `commit` is marked partial but every object it names is in the repository, removes the
/// mark. Returns whether the commit is whole (marked or not).
///
/// # Errors
/// libostree fails (other than by a missing object).
pub fn unmark_if_whole(repo: &Repo, commit: &str) -> Result<bool> {
    let (_, state) = repo
        .load_commit(commit)
        .map_err(Error::ostree(format!("loading commit {commit}")))?;
    if !state.contains(RepoCommitState::PARTIAL) {
        return Ok(true);
    }
    // Traversal loads every dirtree and dirmeta (and fails on a missing one); files are only
    // named, so check them.
    let Ok(objects) = repo.traverse_commit(commit, 0, gio::Cancellable::NONE) else {
        return Ok(false);
    };
    for o in &objects {
        let present = repo
            .has_object(o.object_type(), o.checksum(), gio::Cancellable::NONE)
            .map_err(Error::ostree(format!("looking up {}", o.checksum())))?;
        if !present {
            return Ok(false);
        }
    }
    // A commit marked partial by fsck (corruption found) stays marked.
    let by_fsck = state.contains(RepoCommitState::FSCK_PARTIAL);
    if !by_fsck {
        unmark(repo, &[commit.to_string()])?;
    }
    Ok(!by_fsck)
}

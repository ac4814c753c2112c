//! Garbage collection: drop layer refs no image uses, records of removed encapsulated
//! images and the bound refs ocitree made for commits no image has ([`crate::image::bound`]), then
//! prune unreachable objects, unused transaction staging directories and spooled
//! downloads.
//!
//! Crash safety: every step leaves a whole repository when stopped at any point (kill -9
//! included). Refs go first (each deletion is one atomic unlink, and a layer ref is dropped
//! only when no image names its layer); objects then go in the order
//! [`crate::repo::prune::prune_unreachable`] explains. A rerun finishes the job.
//!
//! Concurrency: [`prune`] holds the repository lock exclusive ([`crate::repo::RepoLock`]) from
//! before it reads the image refs until it is done, so no import is between finding a layer
//! present and committing the image that uses it.

use std::collections::HashSet;

use ostree::{Repo, gio};

use crate::error::{Error, Result};
use crate::image::{ImageInfo, refs};
use crate::refname;

/// What [`prune`] removed.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct PruneReport {
    /// Layer refs deleted.
    pub layer_refs: usize,
    /// Bound refs ocitree made whose commit no image has any more, deleted.
    pub bound_refs: Vec<String>,
    /// Objects deleted.
    pub objects: u64,
    /// Bytes freed.
    pub bytes: u64,
    /// Spooled registry downloads removed (partial or never imported).
    pub spooled_blobs: usize,
    /// Transaction staging directories removed (left by failed or killed imports).
    pub staging_dirs: usize,
    /// Static deltas removed because their target commit is gone.
    pub deltas: usize,
    /// What became of the repository's summary.
    pub summary: crate::serve::summary::SummaryStatus,
}

/// Deletes layer refs that no image lists (by blob digest or diff_id), then every object no
/// ref reaches, then the staging directories of transactions no running process holds and the
/// blobs registry pulls left in [`crate::repo::blob_spool_dir`]. Waits (silently) while
/// imports or removals run; see [`prune_waiting`].
///
/// # Errors
/// libostree fails.
pub fn prune(repo: &Repo) -> Result<PruneReport> {
    prune_waiting(repo, || {})
}

/// [`prune`], calling `on_wait` once if it has to wait for running imports or removals.
///
/// # Errors
/// libostree fails.
pub fn prune_waiting(repo: &Repo, on_wait: impl FnOnce()) -> Result<PruneReport> {
    let _lock = crate::repo::RepoLock::exclusive(&crate::repo::dir(repo), on_wait)?;
    // The summary is signed again at the end: a key that cannot sign fails the prune now.
    crate::serve::summary::check_keys(repo)?;
    let mut used = HashSet::new();
    let mut records = HashSet::new();
    let mut images = HashSet::new();
    for (name, commit) in refs::images(repo)? {
        let info = ImageInfo::load_commit(repo, &name, &commit)?;
        used.extend(info.layers);
        used.extend(info.diff_ids);
        records.extend(info.record);
        images.insert(commit);
    }
    // Markers of bound refs, and the refs ocitree made for commits no image has.
    let mut report = PruneReport {
        bound_refs: crate::image::bound::prune(repo, &images)?,
        ..PruneReport::default()
    };
    // Records of encapsulated commits whose image is gone (or re-imported as a plain image).
    let prefix = refname::ENCAPSULATED_REF_PREFIX.trim_end_matches('/');
    for (r, commit) in refs::list(repo, prefix)? {
        if !records.contains(&commit) {
            repo.set_ref_immediate(None, &r, None, gio::Cancellable::NONE)
                .map_err(Error::ostree(format!("deleting ref {r}")))?;
        }
    }
    for prefix in [refname::BLOB_REF_PREFIX, refname::DIFFID_REF_PREFIX] {
        for (r, _) in refs::list(repo, prefix.trim_end_matches('/'))? {
            let keep = refname::digest_from_layer_ref(&r).is_some_and(|d| used.contains(&d));
            if !keep {
                repo.set_ref_immediate(None, &r, None, gio::Cancellable::NONE)
                    .map_err(Error::ostree(format!("deleting ref {r}")))?;
                report.layer_refs += 1;
            }
        }
    }
    let pruned = crate::repo::prune::prune_unreachable(repo)?;
    report.objects = pruned.objects;
    report.bytes = pruned.bytes;
    report.deltas = crate::serve::delta::prune(repo)?;
    report.summary = crate::serve::summary::update(repo)?;
    let staging = crate::repo::staging::remove_unused(&crate::repo::tmp_dir(repo))?;
    report.staging_dirs = staging.dirs;
    report.bytes += staging.bytes;
    let spool = crate::repo::blob_spool_dir(repo);
    if let Ok(entries) = std::fs::read_dir(&spool) {
        for e in entries.flatten() {
            let size = e.metadata().map(|m| m.len()).unwrap_or(0);
            std::fs::remove_file(e.path())
                .map_err(Error::io(format!("removing {}", e.path().display())))?;
            report.spooled_blobs += 1;
            report.bytes += size;
        }
    }
    Ok(report)
}

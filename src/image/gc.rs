//! Garbage collection: drop layer refs no image uses and records of removed encapsulated
//! images, then prune unreachable objects.

use std::collections::HashSet;

use ostree::{Repo, RepoPruneFlags, gio};

use crate::error::{Error, Result};
use crate::image::{ImageInfo, refs};
use crate::refname;

/// What [`prune`] removed.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct PruneReport {
    /// Layer refs deleted.
    pub layer_refs: usize,
    /// Objects deleted.
    pub objects: u64,
    /// Bytes freed.
    pub bytes: u64,
    /// Spooled registry downloads removed (partial or never imported).
    pub spooled_blobs: usize,
    /// What became of the repository's summary.
    pub summary: crate::serve::summary::SummaryStatus,
}

/// Deletes layer refs that no image lists (by blob digest or diff_id), then every object no
/// ref reaches, then the blobs registry pulls left in [`crate::repo::blob_spool_dir`].
///
/// # Errors
/// libostree fails.
pub fn prune(repo: &Repo) -> Result<PruneReport> {
    let mut used = HashSet::new();
    let mut records = HashSet::new();
    for (name, commit) in refs::images(repo)? {
        let info = ImageInfo::load_commit(repo, &name, &commit)?;
        used.extend(info.layers);
        used.extend(info.diff_ids);
        records.extend(info.record);
    }
    let mut report = PruneReport::default();
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
    let (_, pruned, bytes) = repo
        .prune(RepoPruneFlags::REFS_ONLY, -1, gio::Cancellable::NONE)
        .map_err(Error::ostree("pruning objects"))?;
    report.summary = crate::serve::summary::update(repo)?;
    report.objects = pruned as u64;
    report.bytes = bytes;
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

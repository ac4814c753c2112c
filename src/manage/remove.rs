//! Removing an image: its ref, the record of an encapsulated image, and the refs its commit
//! is bound to that import made for clients ([`crate::image::bound`]) unless another image still has
//! that commit. Layers and objects stay until `prune`.

use ostree::{Repo, gio};

use crate::error::{Error, Result};
use crate::image::encapsulated::bound_refs;
use crate::image::refs;
use crate::refname;

/// What [`remove`] deleted besides the image ref.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct RemoveReport {
    /// The image's commit.
    pub commit: String,
    /// Bound refs ocitree made that were deleted with it.
    pub bound_refs: Vec<String>,
}

fn delete(repo: &Repo, r: &str) -> Result<()> {
    repo.set_ref_immediate(None, r, None, gio::Cancellable::NONE)
        .map_err(Error::ostree(format!("deleting ref {r}")))
}

/// Removes image `name`.
///
/// # Errors
/// [`Error::NotFound`] when there is no such image; libostree fails.
pub fn remove(repo: &Repo, name: &str) -> Result<RemoveReport> {
    let commit = refs::image_commit(repo, name)?;
    // The caller signs the summary again after: a key that cannot sign fails the removal now.
    crate::serve::summary::check_keys(repo)?;
    let object = repo
        .load_variant(ostree::ObjectType::Commit, &commit)
        .map_err(Error::ostree(format!("loading commit {commit}")))?;
    let shared = refs::images(repo)?
        .into_iter()
        .any(|(n, c)| n != name && c == commit);
    delete(repo, &refname::image_ref(name))?;
    let record = refname::encapsulated_ref(name);
    if refs::resolve(repo, &record)?.is_some() {
        delete(repo, &record)?;
    }
    let bound_refs = crate::image::bound::remove(repo, &commit, bound_refs(&object), shared)?;
    Ok(RemoveReport { commit, bound_refs })
}

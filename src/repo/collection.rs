//! Collection IDs (`core.collection-id`): a repository that has one binds every commit
//! ocitree writes to it (`ostree.collection-binding`) and to the refs that name the commit
//! (`ostree.ref-binding`), as `ostree commit` does, so that clients whose remote is configured
//! with `collection-id=` pull them (libostree refuses commits without both bindings there).
//!
//! The binding makes such a commit depend on its ref name (an image commit on the image's
//! name), which is why it is written only when the repository has a collection ID.

use ostree::{Repo, glib};

use crate::error::{Error, Result};

/// libostree's commit metadata key of the collection binding.
pub const COLLECTION_BINDING: &str = "ostree.collection-binding";

/// libostree's commit metadata key of ref bindings.
pub const REF_BINDING: &str = "ostree.ref-binding";

/// Gives the repository collection ID `id`. Setting the ID it has already is a no-op.
///
/// # Errors
/// [`Error::InvalidReference`] for an invalid ID, or when the repository has another ID
/// (commits already bound to it would no longer match); the config cannot be written.
pub fn set_collection_id(repo: &Repo, id: &str) -> Result<()> {
    let invalid = |reason: String| Error::Invalid {
        what: format!("collection ID {id:?}"),
        reason,
    };
    ostree::validate_collection_id(Some(id))
        .map_err(|e| invalid(format!("not a collection ID: {}", e.message())))?;
    match repo.collection_id() {
        Some(have) if have == id => return Ok(()),
        Some(have) => {
            return Err(invalid(format!(
                "the repository already has collection ID {have}; commits are bound to it"
            )));
        }
        None => {}
    }
    repo.set_collection_id(Some(id))
        .map_err(Error::ostree("setting the collection ID"))?;
    repo.write_config(&repo.copy_config())
        .map_err(Error::ostree("writing the repository config"))
}

/// When the repository has a collection ID and commit `checksum` is not bound to it: its
/// binding (`None`: no collection). `None` when it is bound, or there is no ID.
///
/// # Errors
/// libostree cannot load the commit.
pub fn mismatch(repo: &Repo, checksum: &str) -> Result<Option<Option<String>>> {
    let Some(id) = repo.collection_id() else {
        return Ok(None);
    };
    let (commit, _) = crate::repo::load_commit(repo, checksum)?;
    let binding = glib::VariantDict::new(Some(&commit.child_value(0)))
        .lookup::<String>(COLLECTION_BINDING)
        .ok()
        .flatten();
    Ok((binding.as_deref() != Some(id.as_str())).then_some(binding))
}

/// Adds the collection binding and `refs` as ref bindings to commit metadata `dict` when the
/// repository has a collection ID; leaves it alone otherwise.
pub fn bind(repo: &Repo, dict: &glib::VariantDict, refs: &[String]) {
    if let Some(id) = repo.collection_id() {
        dict.insert(COLLECTION_BINDING, id.as_str());
        let mut refs = refs.to_vec();
        refs.sort();
        refs.dedup();
        dict.insert(REF_BINDING, &refs);
    }
}

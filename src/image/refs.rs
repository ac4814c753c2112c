//! Finding layers (by blob digest or diff_id) and images (by name) through their refs, and
//! any commit by ref, checksum or image name ([`resolve_rev`]).

use ostree::{Repo, RepoListRefsExtFlags, gio};

use crate::digest::Digest;
use crate::error::{Error, Result};
use crate::refname;

/// Resolves a ref, `None` if it does not exist.
///
/// # Errors
/// libostree fails.
pub fn resolve(repo: &Repo, r: &str) -> Result<Option<String>> {
    Ok(repo
        .resolve_rev(r, true)
        .map_err(Error::ostree(format!("resolving {r}")))?
        .map(|c| c.to_string()))
}

/// Resolves `rev`: a ref or checksum of the repository, else the name of an image in it.
///
/// # Errors
/// [`Error::NotFound`] when it is neither.
pub fn resolve_rev(repo: &Repo, rev: &str) -> Result<String> {
    if let Ok(Some(c)) = repo.resolve_rev(rev, true) {
        return Ok(c.to_string());
    }
    resolve(repo, &refname::image_ref(rev))?
        .ok_or_else(|| Error::NotFound(format!("ref, commit or image {rev:?}")))
}

/// The layer commit for a blob digest or, failing that, for its diff_id.
///
/// # Errors
/// libostree fails.
pub fn find_layer(
    repo: &Repo,
    digest: &Digest,
    diff_id: Option<&Digest>,
) -> Result<Option<String>> {
    if let Some(c) = resolve(repo, &refname::blob_ref(digest.as_str()))? {
        return Ok(Some(c));
    }
    match diff_id {
        Some(d) => resolve(repo, &refname::diffid_ref(d.as_str())),
        None => Ok(None),
    }
}

/// The commit of the image called `name`.
///
/// # Errors
/// [`Error::NotFound`] when there is no such image.
pub fn image_commit(repo: &Repo, name: &str) -> Result<String> {
    resolve(repo, &refname::image_ref(name))?
        .ok_or_else(|| Error::NotFound(format!("image {name:?}")))
}

/// Every ref under `prefix`, as (ref, commit), sorted.
///
/// # Errors
/// libostree fails.
pub fn list(repo: &Repo, prefix: &str) -> Result<Vec<(String, String)>> {
    let refs = repo
        .list_refs_ext(
            Some(prefix),
            RepoListRefsExtFlags::NONE,
            gio::Cancellable::NONE,
        )
        .map_err(Error::ostree("listing refs"))?;
    let mut v: Vec<(String, String)> = refs.into_iter().collect();
    v.sort();
    Ok(v)
}

/// Every image, as (name, commit), sorted by name.
///
/// # Errors
/// libostree fails.
pub fn images(repo: &Repo) -> Result<Vec<(String, String)>> {
    let prefix = refname::IMAGE_REF_PREFIX.trim_end_matches('/');
    Ok(list(repo, prefix)?
        .into_iter()
        .filter_map(|(r, c)| Some((refname::image_name_from_ref(&r)?, c)))
        .collect())
}

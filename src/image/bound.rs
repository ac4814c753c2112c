//! The refs an image's commit is bound to (`ostree.ref-binding`, see
//! [`super::EncapsulatedCommit::ref_bindings`]): clients pull such a commit only by one of
//! them, so import creates them beside the image ref, outside `ocitree/`.
//!
//! Those names are the user's namespace too (`ostree commit -b exampleos/x86_64/stable` binds
//! the commit to the branch it makes), so ocitree owns only the bound refs it made: each one it
//! sets gets a marker `ocitree/bound/<escaped ref>` ([`refname::bound_marker_ref`]) pointing at
//! the same commit. A bound ref is ocitree's while its marker exists and points where the ref
//! does; any other ref (made before the import, or moved since by someone else) is never
//! changed:
//!
//! | bound ref `B` | import ([`set_in_transaction`]) | rm ([`remove`]), prune ([`prune`]) |
//! |---|---|---|
//! | missing | creates `B` and its marker | deletes a marker left |
//! | at the imported commit | left; its marker kept if it had one | `B` and marker deleted with the last image of the commit, if marked |
//! | elsewhere, marked there (ocitree's) | moves `B` and the marker | as above |
//! | elsewhere, not marked there (not ocitree's) | left, reported ([`LeftRef`]); a stale marker deleted | left; a stale marker deleted |
//!
//! A marker is deleted with its ref or as soon as its ref is not ocitree's, so it never keeps
//! alive a commit no image has (prune deletes what rm could not: refs of a commit whose image
//! was re-imported as another commit).

use std::collections::HashSet;

use ostree::{Repo, RepoResolveRevExtFlags, gio};

use crate::error::{Error, Result};
use crate::image::refs;
use crate::refname;

/// A bound ref import did not touch.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub struct LeftRef {
    /// The ref the commit is bound to.
    pub name: String,
    /// The commit it points at, which ocitree did not set it to; `None` when it does not exist
    /// and was not created because its name is too long for a marker.
    pub commit: Option<String>,
}

/// What [`set_in_transaction`] did.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct BoundRefs {
    /// Refs that point at the commit after the import (set by it, or already there).
    pub set: Vec<String>,
    /// Refs left alone because ocitree did not make them.
    pub left: Vec<LeftRef>,
}

/// The commit local ref `r` points at, `None` if there is none. Local only: a ref
/// `exampleos/x86_64/stable` is not the ref `x86_64/stable` of a remote `exampleos`, which
/// [`refs::resolve`] would find too.
fn resolve(repo: &Repo, r: &str) -> Result<Option<String>> {
    Ok(repo
        .resolve_rev_ext(r, true, RepoResolveRevExtFlags::LOCAL_ONLY)
        .map_err(Error::ostree(format!("resolving {r}")))?
        .map(|c| c.to_string()))
}

/// The bindings of a commit ocitree may manage: valid ref names outside `ocitree/`.
fn manageable(bindings: Vec<String>) -> impl Iterator<Item = String> {
    bindings
        .into_iter()
        .filter(|b| ostree::validate_rev(b).is_ok() && !b.starts_with(refname::REF_PREFIX))
}

/// Points the bound refs `bindings` of `commit` at it where ocitree may (see the [module
/// docs](self)), in the repository's open transaction: the refs change when it commits.
///
/// # Errors
/// libostree cannot resolve a ref.
pub fn set_in_transaction(repo: &Repo, commit: &str, bindings: Vec<String>) -> Result<BoundRefs> {
    let mut out = BoundRefs::default();
    for bound in manageable(bindings) {
        let current = resolve(repo, &bound)?;
        let Some(marker) = refname::bound_marker_ref(&bound) else {
            // Cannot be marked, so never made: left as it is.
            if current.as_deref() == Some(commit) {
                out.set.push(bound);
            } else {
                out.left.push(LeftRef {
                    name: bound,
                    commit: current,
                });
            }
            continue;
        };
        let marked = resolve(repo, &marker)?;
        let ours = current.is_some() && marked == current;
        match current {
            None => {
                repo.transaction_set_ref(None, &bound, Some(commit));
                repo.transaction_set_ref(None, &marker, Some(commit));
                out.set.push(bound);
            }
            Some(c) if c == commit => {
                if marked.is_some() && !ours {
                    // Someone else moved it here: no longer ocitree's.
                    repo.transaction_set_ref(None, &marker, None);
                }
                out.set.push(bound);
            }
            Some(_) if ours => {
                repo.transaction_set_ref(None, &bound, Some(commit));
                repo.transaction_set_ref(None, &marker, Some(commit));
                out.set.push(bound);
            }
            Some(c) => {
                if marked.is_some() {
                    repo.transaction_set_ref(None, &marker, None);
                }
                out.left.push(LeftRef {
                    name: bound,
                    commit: Some(c),
                });
            }
        }
    }
    Ok(out)
}

fn delete(repo: &Repo, r: &str) -> Result<()> {
    repo.set_ref_immediate(None, r, None, gio::Cancellable::NONE)
        .map_err(Error::ostree(format!("deleting ref {r}")))
}

/// After the image of `commit` is removed: deletes its bound refs `bindings` that ocitree made
/// and that still point at it, with their markers, unless another image has the commit
/// (`shared`); deletes the markers of bound refs that are no longer ocitree's. Returns the
/// bound refs deleted.
///
/// # Errors
/// libostree fails.
pub fn remove(
    repo: &Repo,
    commit: &str,
    bindings: Vec<String>,
    shared: bool,
) -> Result<Vec<String>> {
    let mut deleted = Vec::new();
    for bound in manageable(bindings) {
        let Some(marker) = refname::bound_marker_ref(&bound) else {
            continue;
        };
        let Some(marked) = resolve(repo, &marker)? else {
            continue; // not ocitree's
        };
        let current = resolve(repo, &bound)?;
        if current.as_deref() != Some(marked.as_str()) {
            delete(repo, &marker)?; // moved or deleted by someone else
        } else if marked == commit && !shared {
            delete(repo, &bound)?;
            delete(repo, &marker)?;
            deleted.push(bound);
        }
    }
    Ok(deleted)
}

/// Deletes every marker whose ref is no longer ocitree's, and the bound refs ocitree made (with
/// their markers) whose commit no image has (`images`: the commits of every image ref).
/// Returns the bound refs deleted. The caller holds the repository lock exclusive.
///
/// # Errors
/// libostree fails.
pub fn prune(repo: &Repo, images: &HashSet<String>) -> Result<Vec<String>> {
    let mut deleted = Vec::new();
    let prefix = refname::BOUND_REF_PREFIX.trim_end_matches('/');
    for (marker, marked) in refs::list(repo, prefix)? {
        let bound = refname::bound_ref_from_marker(&marker)
            .filter(|b| ostree::validate_rev(b).is_ok() && !b.starts_with(refname::REF_PREFIX));
        let current = match &bound {
            Some(b) => resolve(repo, b)?,
            None => None, // not a marker ocitree writes
        };
        match bound {
            Some(b) if current.as_deref() == Some(marked.as_str()) => {
                if !images.contains(&marked) {
                    delete(repo, &b)?;
                    delete(repo, &marker)?;
                    deleted.push(b);
                }
            }
            _ => delete(repo, &marker)?,
        }
    }
    Ok(deleted)
}

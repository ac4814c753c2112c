//! Before the commit object is written: every object it reaches must be in the repository,
//! or the image ref would point at a commit `ostree fsck` calls broken.

use std::collections::HashSet;

use ostree::{ObjectType, Repo, gio, glib};

use crate::error::{Error, Result};

/// Checks that the tree of commit `checksum` (object `commit`) is complete in `repo`.
///
/// # Errors
/// [`Error::InvalidImage`] naming the first missing object and its path; libostree failures.
pub(super) fn check(
    repo: &Repo,
    image: &str,
    checksum: &str,
    commit: &glib::Variant,
) -> Result<()> {
    let (tree, meta) = crate::repo::commit_root(commit);
    let mut seen = HashSet::new();
    let mut stack = vec![(String::new(), tree, meta)];
    let missing = |path: &str, kind: &str, csum: &str| Error::InvalidImage {
        image: image.to_string(),
        reason: format!(
            "commit {checksum} names {kind} {csum} (/{path}), which none of its layers carries"
        ),
    };
    let has = |otype, csum: &str| {
        repo.has_object(otype, csum, gio::Cancellable::NONE)
            .map_err(Error::ostree(format!("looking up object {csum}")))
    };
    while let Some((path, tree, meta)) = stack.pop() {
        if !has(ObjectType::DirMeta, &meta)? {
            return Err(missing(&path, "dirmeta", &meta));
        }
        if !seen.insert(tree.clone()) {
            continue;
        }
        if !has(ObjectType::DirTree, &tree)? {
            return Err(missing(&path, "dirtree", &tree));
        }
        let v = repo
            .load_variant(ObjectType::DirTree, &tree)
            .map_err(Error::ostree(format!("loading dirtree {tree}")))?;
        let (files, dirs) =
            crate::mtree::dirtree_entries(&v).ok_or_else(|| Error::InvalidImage {
                image: image.to_string(),
                reason: format!("dirtree {tree} (/{path}) is malformed"),
            })?;
        let join = |name: &str| {
            if path.is_empty() {
                name.to_string()
            } else {
                format!("{path}/{name}")
            }
        };
        for (name, csum) in files {
            let csum = hex::encode(csum);
            if !has(ObjectType::File, &csum)? {
                return Err(missing(&join(&name), "file object", &csum));
            }
        }
        for (name, tree, meta) in dirs {
            stack.push((join(&name), hex::encode(tree), hex::encode(meta)));
        }
    }
    Ok(())
}

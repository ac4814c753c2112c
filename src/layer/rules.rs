//! The version of the rules a tar layer's tree is built under: how its entries apply in tar
//! order, what is refused, what the layer commit records for the merge (README, "Layer
//! rules"). Every tar layer commit carries it ([`meta::LAYER_RULES`]); one stored under other
//! rules (an earlier ocitree's) is not reused but read again from its blob, so a rule that
//! changes — a case once merged one way, now refused or merged right — holds for every image
//! imported after the change, whatever the repository held before.

use ostree::{ObjectType, Repo, glib};

use crate::meta;

/// The rules this build applies. Raise it when a layer's tree or its records would differ.
/// 2: a file or symlink over a directory the layer made for a hardlink or skipped entry
/// alone is recorded as late ([`meta::LAYER_LATE_DIRS`]).
/// 3: a hardlink whose target is, or leads through, the link's own path is refused; the directories
/// the tar never named below a directory that a non-directory then replaces are recorded as
/// late.
pub const VERSION: u32 = 3;

/// Whether layer commit `commit` can be reused under [`VERSION`]: a tar layer built under it,
/// or a commit of another kind ([`meta::LAYER_KIND`]: an artifact blob as one file, a file
/// tree's manifest, which no tar rule changes) whose tree, if it keeps one and the tree is
/// still stored, is.
///
/// # Errors
/// A commit is missing.
pub fn current(repo: &Repo, commit: &str) -> Result<bool, glib::Error> {
    let v = repo.load_variant(ObjectType::Commit, commit)?;
    current_commit(repo, &v)
}

fn current_commit(repo: &Repo, v: &glib::Variant) -> Result<bool, glib::Error> {
    let dict = glib::VariantDict::new(Some(&v.child_value(0)));
    let string = |key| dict.lookup::<String>(key).ok().flatten();
    if string(meta::LAYER_KIND).is_some() {
        return match string(meta::LAYER_TREE_COMMIT) {
            // a tree pruned since is rebuilt from the kept blob, under these rules
            Some(tree) => match repo.load_variant_if_exists(ObjectType::Commit, &tree)? {
                Some(t) => current_commit(repo, &t),
                None => Ok(true),
            },
            None => Ok(true),
        };
    }
    Ok(dict.lookup::<u32>(meta::LAYER_RULES).ok().flatten() == Some(VERSION))
}

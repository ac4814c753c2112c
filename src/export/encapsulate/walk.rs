//! A commit's tree → every path in it, sorted, without a checkout: directories with their
//! dirmeta checksum, files and symlinks with their content checksum. Read from the dirtree
//! objects alone, so the walk costs one small object per directory.

use ostree::{ObjectType, Repo, TreeVariantType, glib};

use crate::error::{Error, Result};

/// What a path of the tree is.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Kind {
    /// A directory, with its dirmeta and dirtree checksums.
    Dir {
        /// dirmeta checksum.
        meta: String,
        /// dirtree checksum (its entries).
        tree: String,
    },
    /// A regular file or symlink, with its content object checksum.
    Content {
        /// content object checksum.
        checksum: String,
    },
}

/// One path of the tree.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Node {
    /// Path relative to the root, components joined by `/`; `""` is the root.
    pub path: String,
    /// What it is.
    pub kind: Kind,
}

impl Node {
    /// The last path component (`""` for the root).
    pub fn name(&self) -> &str {
        self.path.rsplit('/').next().unwrap_or_default()
    }
}

pub(crate) fn load_dirtree(repo: &Repo, csum: &str, path: &str) -> Result<TreeVariantType> {
    let v = repo
        .load_variant(ObjectType::DirTree, csum)
        .map_err(Error::ostree(format!("loading dirtree of /{path}")))?;
    crate::mtree::dirtree_entries(&v).ok_or_else(|| Error::Ostree {
        op: format!("parsing dirtree of /{path}"),
        cause: glib::Error::new(ostree::gio::IOErrorEnum::InvalidData, "not a dirtree"),
    })
}

/// Every path below the root whose dirtree is `contents` and dirmeta `meta`, depth first,
/// each directory before its children and the children of a directory in byte order of
/// their names (files and subdirectories interleaved). The root comes first, as `""`.
///
/// # Errors
/// A dirtree object is missing or malformed.
pub fn walk(repo: &Repo, contents: &str, meta: &str) -> Result<Vec<Node>> {
    let mut out = vec![Node {
        path: String::new(),
        kind: Kind::Dir {
            meta: meta.to_string(),
            tree: contents.to_string(),
        },
    }];
    walk_into(repo, contents, "", &mut out)?;
    Ok(out)
}

fn walk_into(repo: &Repo, contents: &str, path: &str, out: &mut Vec<Node>) -> Result<()> {
    let (files, dirs) = load_dirtree(repo, contents, path)?;
    let join = |name: &str| {
        if path.is_empty() {
            name.to_string()
        } else {
            format!("{path}/{name}")
        }
    };
    // Both lists are sorted by name (libostree writes them so): merge them.
    let mut files = files.into_iter().peekable();
    let mut dirs = dirs.into_iter().peekable();
    loop {
        let take_file = match (files.peek(), dirs.peek()) {
            (Some(f), Some(d)) => f.0.as_bytes() < d.0.as_bytes(),
            (Some(_), None) => true,
            (None, Some(_)) => false,
            (None, None) => return Ok(()),
        };
        if take_file {
            let (name, csum) = files.next().expect("peeked");
            out.push(Node {
                path: join(&name),
                kind: Kind::Content {
                    checksum: hex::encode(csum),
                },
            });
        } else {
            let (name, sub, meta) = dirs.next().expect("peeked");
            let child = join(&name);
            let tree = hex::encode(sub);
            out.push(Node {
                path: child.clone(),
                kind: Kind::Dir {
                    meta: hex::encode(meta),
                    tree: tree.clone(),
                },
            });
            walk_into(repo, &tree, &child, out)?;
        }
    }
}

/// The root (dirtree, dirmeta) of commit `commit`.
///
/// # Errors
/// The commit is missing.
pub fn commit_root(repo: &Repo, commit: &str) -> Result<(String, String)> {
    let v = repo
        .load_variant(ObjectType::Commit, commit)
        .map_err(Error::ostree(format!("loading commit {commit}")))?;
    Ok(crate::repo::commit_root(&v))
}

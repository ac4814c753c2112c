//! A layer commit as the merge needs it: root checksums plus the metadata that says where the
//! layer needs more than a plain overlay (whiteouts, implicit directories, lower-layer links).

use std::collections::{HashMap, HashSet};

use ostree::{ObjectType, Repo, glib};

use crate::entries::whiteout::{self, Whiteout};
use crate::error::LayerError;
use crate::layer::treated::GivenTree;
use crate::meta;

/// A loaded layer commit.
#[derive(Clone, Debug)]
pub struct LayerTree {
    /// The layer commit checksum.
    pub commit: String,
    /// Root dirtree checksum.
    pub contents: String,
    /// Root dirmeta checksum.
    pub meta: String,
    /// The diff_id the layer commit records (for an artifact layer: its blob digest).
    pub diff_id: String,
    /// Directories the tar never named ("" is the root).
    pub implicit: HashSet<String>,
    /// Directories that must be walked rather than grafted: those holding whiteout markers or
    /// lower-layer hardlinks, and all their ancestors.
    pub special: HashSet<String>,
    /// The paths whose lower content the layer's whiteout markers hide, with all below them:
    /// NAME for `DIR/.wh.NAME`, DIR for `DIR/.wh..wh..opq` ("" is the root).
    pub hidden: Vec<String>,
    /// Hardlinks to lower-layer files, (path, target), in tar order.
    pub links: Vec<(String, String)>,
    /// Hardlinks written before their target, which came later in the layer, (path, target):
    /// they take a lower-layer file at the target if there is one ([`meta::LAYER_FORWARD_LINKS`]).
    pub forward_links: Vec<(String, String)>,
    /// Hardlinks written before the layer put a directory at their target, (path, target):
    /// they take the lower layers' file there, which must exist ([`meta::LAYER_EARLY_LINKS`]).
    pub early_links: Vec<(String, String)>,
    /// Directories that replaced a non-directory of the same layer: opaque to lower layers
    /// ([`meta::LAYER_REPLACED_DIRS`]).
    pub replaced_dirs: HashSet<String>,
    /// Directories the tar named only after entries below them: refused over a lower-layer
    /// non-directory ([`meta::LAYER_LATE_DIRS`]).
    pub late_dirs: HashSet<String>,
    /// Entries the layer could not store (device nodes, FIFOs), by parent directory: their
    /// paths still belong to this layer, so the merge removes what lower layers had there.
    pub skipped: HashMap<String, Vec<String>>,
    /// Directories that hold, at any depth, an entry the dirtree does not show (a skipped
    /// entry or a lower-layer hardlink): they exist in the merged tree even when their
    /// dirtree holds only whiteout markers.
    pub content_dirs: HashSet<String>,
}

fn ancestors(path: &str) -> impl Iterator<Item = String> + '_ {
    let mut p = Some(path);
    std::iter::from_fn(move || {
        let cur = p?;
        p = if cur.is_empty() {
            None
        } else {
            Some(cur.rfind('/').map_or("", |i| &cur[..i]))
        };
        Some(cur.to_string())
    })
}

/// [`meta::LAYER_DIFF_ID`] of a layer commit's metadata.
fn diff_id(dict: &glib::VariantDict, commit: &str) -> Result<String, LayerError> {
    dict.lookup::<String>(meta::LAYER_DIFF_ID)
        .ok()
        .flatten()
        .ok_or_else(|| {
            LayerError::Read(std::io::Error::other(format!(
                "layer commit {commit} records no diff_id"
            )))
        })
}

fn parent(path: &str) -> &str {
    path.rfind('/').map_or("", |i| &path[..i])
}

impl LayerTree {
    /// Loads a layer commit written by [`crate::layer::LayerBuilder`].
    ///
    /// # Errors
    /// The commit is missing or is not a layer commit.
    pub fn load(repo: &Repo, commit: &str) -> Result<LayerTree, LayerError> {
        let err = |op| {
            move |cause| LayerError::Ostree {
                path: String::new(),
                op,
                cause,
            }
        };
        let v = repo
            .load_variant(ObjectType::Commit, commit)
            .map_err(err("loading layer commit"))?;
        let dict = glib::VariantDict::new(Some(&v.child_value(0)));
        let strings = |key| {
            dict.lookup::<Vec<String>>(key)
                .ok()
                .flatten()
                .unwrap_or_default()
        };
        let implicit: HashSet<String> = strings(meta::LAYER_IMPLICIT_DIRS).into_iter().collect();
        let links: Vec<(String, String)> = dict
            .lookup::<Vec<(String, String)>>(meta::LAYER_LINKS)
            .ok()
            .flatten()
            .unwrap_or_default();
        let forward_links: Vec<(String, String)> = dict
            .lookup::<Vec<(String, String)>>(meta::LAYER_FORWARD_LINKS)
            .ok()
            .flatten()
            .unwrap_or_default();
        let early_links: Vec<(String, String)> = dict
            .lookup::<Vec<(String, String)>>(meta::LAYER_EARLY_LINKS)
            .ok()
            .flatten()
            .unwrap_or_default();
        let replaced_dirs: HashSet<String> =
            strings(meta::LAYER_REPLACED_DIRS).into_iter().collect();
        let late_dirs: HashSet<String> = strings(meta::LAYER_LATE_DIRS).into_iter().collect();
        let skipped_paths: Vec<(String, String)> = dict
            .lookup::<Vec<(String, String)>>(meta::LAYER_SKIPPED)
            .ok()
            .flatten()
            .unwrap_or_default();
        let mut special = HashSet::new();
        let mut hidden = Vec::new();
        for w in strings(meta::LAYER_WHITEOUTS) {
            let (dir, name) = w.rsplit_once('/').unwrap_or(("", &w));
            match whiteout::classify(name) {
                Whiteout::Remove(t) if dir.is_empty() => hidden.push(t.to_string()),
                Whiteout::Remove(t) => hidden.push(format!("{dir}/{t}")),
                Whiteout::Opaque => hidden.push(dir.to_string()),
                _ => {}
            }
            special.extend(ancestors(parent(&w)));
        }
        let mut content_dirs = HashSet::new();
        let mut skipped: HashMap<String, Vec<String>> = HashMap::new();
        for (path, _) in &skipped_paths {
            let (dir, name) = path.rsplit_once('/').unwrap_or(("", path));
            skipped
                .entry(dir.to_string())
                .or_default()
                .push(name.to_string());
        }
        for path in links
            .iter()
            .chain(&early_links)
            .map(|(p, _)| p)
            .chain(skipped_paths.iter().map(|(p, _)| p))
        {
            content_dirs.extend(ancestors(parent(path)));
        }
        special.extend(content_dirs.iter().cloned());
        for dir in &replaced_dirs {
            special.extend(ancestors(dir));
        }
        for (path, _) in &forward_links {
            special.extend(ancestors(parent(path)));
        }
        let (contents, meta) = crate::repo::commit_root(&v);
        Ok(LayerTree {
            commit: commit.to_string(),
            contents,
            meta,
            diff_id: diff_id(&dict, commit)?,
            implicit,
            special,
            hidden,
            links,
            forward_links,
            early_links,
            replaced_dirs,
            late_dirs,
            skipped,
            content_dirs,
        })
    }
}

impl LayerTree {
    /// The tree a layer gives in an image, as [`crate::layer::treated::tree_of`] found it.
    ///
    /// # Errors
    /// As [`LayerTree::load`] and [`LayerTree::artifact`].
    pub fn given(repo: &Repo, tree: &GivenTree) -> Result<LayerTree, LayerError> {
        match tree {
            GivenTree::Tar(commit) => LayerTree::load(repo, commit),
            GivenTree::File { commit, path } => LayerTree::artifact(repo, commit, path),
        }
    }

    /// An artifact layer commit ([`crate::layer::file`]) as a layer that adds one file at
    /// `path` (relative, normalised: [`crate::select::title::title_path`]); the directories
    /// above it are implicit (they take the metadata lower layers give them). The small tree
    /// is written here (it needs a transaction).
    ///
    /// # Errors
    /// The commit is not an artifact layer, or libostree fails.
    pub fn artifact(repo: &Repo, commit: &str, path: &str) -> Result<LayerTree, LayerError> {
        let err = |op| {
            let path = path.to_string();
            move |cause| LayerError::Ostree { path, op, cause }
        };
        let csum =
            crate::layer::file::blob_object(repo, commit).map_err(err("reading artifact layer"))?;
        let v = repo
            .load_variant(ObjectType::Commit, commit)
            .map_err(err("loading layer commit"))?;
        let diff_id = diff_id(&glib::VariantDict::new(Some(&v.child_value(0))), commit)?;
        let dirmeta =
            crate::layer::object::default_dirmeta(repo).map_err(err("writing dirmeta"))?;
        let root = ostree::MutableTree::new();
        root.set_metadata_checksum(&dirmeta);
        let (dirs, name) = path.rsplit_once('/').unwrap_or(("", path));
        let mut dir = root.clone();
        for seg in dirs.split('/').filter(|s| !s.is_empty()) {
            dir = dir
                .ensure_dir(seg)
                .map_err(err("adding artifact directory"))?;
            dir.set_metadata_checksum(&dirmeta);
        }
        dir.replace_file(name, &csum)
            .map_err(err("adding artifact file"))?;
        let (contents, meta) = crate::repo::write_tree(repo, &root).map_err(err("writing tree"))?;
        Ok(LayerTree {
            commit: commit.to_string(),
            contents,
            meta,
            diff_id,
            implicit: ancestors(dirs).collect(),
            special: HashSet::new(),
            hidden: Vec::new(),
            links: Vec::new(),
            forward_links: Vec::new(),
            early_links: Vec::new(),
            replaced_dirs: HashSet::new(),
            late_dirs: HashSet::new(),
            skipped: HashMap::new(),
            content_dirs: HashSet::new(),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ancestors_include_root() {
        assert_eq!(ancestors("a/b").collect::<Vec<_>>(), ["a/b", "a", ""]);
        assert_eq!(ancestors("").collect::<Vec<_>>(), [""]);
        assert_eq!(parent("a/b/.wh.c"), "a/b");
        assert_eq!(parent(".wh.c"), "");
    }
}

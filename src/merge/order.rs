//! What the layer tree cannot say about tar order, checked where the merge needs it: a layer
//! commit holds each path's last entry, not the order the tar had them in. Where entries of a
//! layer reach through a lower layer's symlink, that order decided where they went (through
//! the old path or the one the layer made, which of two entries for one path came last), so
//! the merge refuses what it cannot tell ([`Merger::check_way`]), as it refuses a directory
//! named after entries below it over a lower non-directory ([`Merger::late_over_lower`]).

use crate::entries::whiteout::{self, Whiteout};
use crate::error::LayerError;
use crate::merge::LayerTree;
use crate::merge::apply::{Merger, join};
use crate::mtree::Node;

/// What a layer puts at a path, looked up in its own tree without following anything.
#[derive(Debug, PartialEq, Eq)]
enum LayerNode {
    Nothing,
    /// A directory, with its dirtree checksum.
    Dir(String),
    NonDir,
}

impl Merger<'_> {
    /// Checks the way the layer directory `child` (dirtree `sub_contents`), which the tar never
    /// named, took through a lower symlink to real path `p`, following the symlinks at
    /// `route`: content (not `markers_only`) into what a marker of the layer hides, an entry
    /// landing on a symlink of the way, entries meeting the layer's own at `p`.
    pub(super) fn check_way(
        &self,
        layer: &LayerTree,
        (child, sub_contents): (&str, &str),
        p: &[String],
        route: &[Vec<String>],
        markers_only: bool,
    ) -> Result<(), LayerError> {
        // Content through a lower symlink into what a marker of this layer
        // hides: the marker acts on the lower layers only, yet the merge,
        // one directory at a time, may apply it after that content.
        let real = p.join("/");
        let hides = |h: &String| {
            h.is_empty()
                || real.is_empty()
                || real == *h
                || real.starts_with(&format!("{h}/"))
                || h.starts_with(&format!("{real}/"))
        };
        if !markers_only && layer.hidden.iter().any(hides) {
            return Err(LayerError::EntryConflict {
                path: child.to_string(),
                reason: format!(
                    "the layer writes below it through a lower layer's symlink \
                     into {real:?}, where a whiteout marker of the same layer \
                     hides the lower content: the result depends on the order \
                     the two are applied in"
                ),
            });
        }
        // Entries of the layer that land on the way there (the symlink itself,
        // or one it leads through): in tar order they changed the way.
        for v in route {
            let Some(rel) = v.strip_prefix(p).filter(|r| !r.is_empty()) else {
                continue;
            };
            let below = format!("{child}/{}", rel.join("/"));
            let changes = match self.node_in(sub_contents, rel, child)? {
                LayerNode::NonDir => true,
                LayerNode::Dir(_) => !layer.implicit.contains(&below),
                LayerNode::Nothing => false,
            };
            if changes {
                return Err(LayerError::EntryConflict {
                    path: below,
                    reason: format!(
                        "it lands, through a lower layer's symlink, on {:?}, \
                         which is on that symlink's own way: which entry the \
                         tar has first decides where the others go",
                        v.join("/")
                    ),
                });
            }
        }
        // Entries of the layer that land where it also writes under the real
        // path's own name.
        if real != *child
            && let LayerNode::Dir(direct) = self.layer_node(layer, p)?
            && let Some(at) = self.overlap(layer, (sub_contents, child), (&direct, &real))?
        {
            return Err(LayerError::EntryConflict {
                path: child.to_string(),
                reason: format!(
                    "a lower layer's symlink here leads to {real:?}, where the \
                     same layer also writes: its entries under both names meet \
                     at {at:?}, and which the tar has first decides the result"
                ),
            });
        }
        Ok(())
    }

    /// Records that layer path `layer_path`, in a directory the layer reached through a lower
    /// symlink, lands at real path `real`: an error when another layer path landed there
    /// through another way (which the tar has last decides what stays).
    pub(super) fn alias(&mut self, real: String, layer_path: String) -> Result<(), LayerError> {
        match self.aliased.get(&real) {
            Some(other) if *other != layer_path => Err(LayerError::EntryConflict {
                path: layer_path,
                reason: format!(
                    "it lands, through a lower layer's symlink, on {real:?}, where the same \
                     layer's {other:?} lands too: which the tar has last decides what stays"
                ),
            }),
            _ => {
                self.aliased.insert(real, layer_path);
                Ok(())
            }
        }
    }

    /// After the layer's tree is applied: no resolution through a lower symlink passed a real
    /// path that the layer wrote, through another lower symlink, under another name (in tar
    /// order, the way led through what was there before or after that entry).
    pub(super) fn check_aliases(&self) -> Result<(), LayerError> {
        for (real, for_path) in &self.passed {
            if let Some(other) = self.aliased.get(real) {
                return Err(LayerError::EntryConflict {
                    path: for_path.clone(),
                    reason: format!(
                        "a lower layer's symlink on its path leads through {real:?}, where the \
                         same layer writes {other:?} through another symlink: which the tar has \
                         first decides where it lands"
                    ),
                });
            }
        }
        Ok(())
    }

    /// What layer `layer` puts at real path `p` (where the merged tree now has `now`) that
    /// makes a path resolved through `p` depend on tar order: a non-directory (file, symlink,
    /// hardlink, skipped entry), or a directory it names over a lower non-directory or over a
    /// non-directory it wrote there first. `None`
    /// for nothing, a directory it does not name, or one it names over a lower directory or
    /// nothing: there the path resolves the same whatever the order.
    pub(super) fn order_dependent(
        &self,
        layer: &LayerTree,
        p: &[String],
        now: Option<&Node>,
    ) -> Result<Option<&'static str>, LayerError> {
        let path = p.join("/");
        let (dir, name) = path.rsplit_once('/').unwrap_or(("", &path));
        let written = layer
            .skipped
            .get(dir)
            .is_some_and(|s| s.iter().any(|n| n == name))
            || (layer.links.iter())
                .chain(&layer.forward_links)
                .chain(&layer.early_links)
                .any(|(l, _)| *l == path);
        if written {
            return Ok(Some("a hardlink or an entry it skipped"));
        }
        Ok(match self.layer_node(layer, p)? {
            LayerNode::NonDir => Some("a file or symlink"),
            LayerNode::Dir(_) if layer.replaced_dirs.contains(&path) => {
                Some("a directory in place of a file or symlink it wrote first")
            }
            LayerNode::Dir(_)
                if !layer.implicit.contains(&path)
                    && (matches!(now, Some(Node::File(_)))
                        || self.replaced_lower.contains(&path)) =>
            {
                Some("a directory in place of a lower symlink or file")
            }
            _ => None,
        })
    }

    /// What the layer's own tree has at `p`, following nothing.
    fn layer_node(&self, layer: &LayerTree, p: &[String]) -> Result<LayerNode, LayerError> {
        self.node_in(&layer.contents, p, "")
    }

    /// What the layer directory `contents` (at layer path `base`) has at `p` below it,
    /// following nothing.
    fn node_in(&self, contents: &str, p: &[String], base: &str) -> Result<LayerNode, LayerError> {
        let mut contents = contents.to_string();
        for (i, c) in p.iter().enumerate() {
            let at = join(base, &p[..i].join("/"));
            let (files, dirs) = self.dirtree(&contents, &at)?;
            let last = i + 1 == p.len();
            if files.iter().any(|(n, _)| n == c) {
                return Ok(if last {
                    LayerNode::NonDir
                } else {
                    LayerNode::Nothing
                });
            }
            match dirs.into_iter().find(|(n, _, _)| n == c) {
                Some((_, sub, _)) => contents = sub,
                None => return Ok(LayerNode::Nothing),
            }
        }
        Ok(LayerNode::Dir(contents))
    }

    /// A path where two directories of one layer's tree, `a` (at layer path `a_path`) and
    /// `b` (at `b_path`), which land in the same merged directory, would write over each
    /// other: a name both have unless both are directories (then their contents, and both
    /// named with different metadata), a whiteout marker for a name the other has, an opaque
    /// marker beside anything of the other. Which the tar has first decides the result.
    fn overlap(
        &self,
        layer: &LayerTree,
        (a, a_path): (&str, &str),
        (b, b_path): (&str, &str),
    ) -> Result<Option<String>, LayerError> {
        let (a_files, a_dirs) = self.dirtree(a, a_path)?;
        let (b_files, b_dirs) = self.dirtree(b, b_path)?;
        let names = |files: &[(String, String)], dirs: &[(String, String, String)]| {
            let mut all: Vec<String> = files.iter().map(|(n, _)| n.clone()).collect();
            all.extend(dirs.iter().map(|(n, _, _)| n.clone()));
            all
        };
        let (a_names, b_names) = (names(&a_files, &a_dirs), names(&b_files, &b_dirs));
        for (files, other, path) in [(&a_files, &b_names, a_path), (&b_files, &a_names, b_path)] {
            for (name, _) in files.iter() {
                let clash = match whiteout::classify(name) {
                    Whiteout::Opaque => other
                        .iter()
                        .any(|n| whiteout::classify(n) != Whiteout::Opaque),
                    Whiteout::Remove(t) => other.iter().any(|n| n == t),
                    Whiteout::None => other
                        .iter()
                        .any(|n| *n == *name || *n == format!(".wh.{name}")),
                    _ => false,
                };
                if clash {
                    return Ok(Some(join(path, name)));
                }
            }
        }
        for (name, a_sub, a_meta) in &a_dirs {
            if whiteout::classify(name) != Whiteout::None {
                continue;
            }
            let Some((_, b_sub, b_meta)) = b_dirs.iter().find(|(n, _, _)| n == name) else {
                continue;
            };
            let (a_child, b_child) = (join(a_path, name), join(b_path, name));
            let named = |p: &String| !layer.implicit.contains(p);
            if named(&a_child) && named(&b_child) && a_meta != b_meta {
                return Ok(Some(a_child));
            }
            if let Some(p) = self.overlap(layer, (a_sub, &a_child), (b_sub, &b_child))? {
                return Ok(Some(p));
            }
        }
        Ok(None)
    }

    /// The error for `path`, which the layer names only after entries below it, over lower
    /// non-directory `csum`: in tar order those entries went through it (a symlink) or
    /// could not be written (a file) before the layer's entry replaced it.
    pub(super) fn late_over_lower(
        &mut self,
        path: String,
        csum: &str,
    ) -> Result<LayerError, LayerError> {
        let what = match self.symlink_target(csum)? {
            Some(_) => "symlink (they went through it)",
            None => "file (they could not be written)",
        };
        Ok(LayerError::EntryConflict {
            path,
            reason: format!(
                "the layer names this path only after entries below it, and a lower layer has \
                 a {what} there before the layer's entry replaces it: the result depends on how \
                 the tar is extracted"
            ),
        })
    }
}

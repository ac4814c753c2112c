//! What a tar entry does to the entries of the same layer before it, in tar order.
//!
//! A layer tree holds each path's last entry; these rules record what tar order did that the
//! tree alone cannot show, for the merge ([`crate::merge`]) to act on: hardlinks whose target
//! came later or was replaced, directories that replaced a non-directory or were named after
//! entries below them, and markers that come too late to mean one thing.

use ostree::MutableTree;

use super::{LayerBuilder, ostree_err};
use crate::entries::whiteout::{self, Whiteout};
use crate::entries::{Entry, EntryKind, path};
use crate::error::LayerError;
use crate::mtree::{self, Node};

impl LayerBuilder<'_> {
    /// Whether whiteout `marker` (at `path`) comes after entries of this layer written
    /// through a directory the layer never named at or below the path it hides (`.wh.NAME`:
    /// NAME; `.wh..wh..opq`: below its directory). In tar order those entries went into (or
    /// through, or failed on) what the lower layers had there before the marker removed it;
    /// applied first, the marker removes it before they come.
    pub(super) fn marker_after_entries(&self, marker: Whiteout<'_>, path: &[String]) -> bool {
        let dir = path::join(&path[..path.len() - 1]);
        let below = match marker {
            Whiteout::Remove(name) if dir.is_empty() => name.to_string(),
            Whiteout::Remove(name) => format!("{dir}/{name}"),
            Whiteout::Opaque if dir.is_empty() => String::new(),
            Whiteout::Opaque => format!("{dir}/"),
            _ => return false,
        };
        let opaque = marker == Whiteout::Opaque;
        self.implicit.iter().any(|d| {
            !d.is_empty()
                && d.starts_with(&below)
                && (opaque || d.len() == below.len() || d.as_bytes()[below.len()] == b'/')
        })
    }

    /// What entry `e` (not a whiteout marker) does to what this layer has at its path, in tar
    /// order: a hardlink waiting there for its target is gone, with those below when `e` is
    /// not a directory; a directory over a non-directory hides the lower layers' directory as
    /// an opaque one does. A non-directory over a directory the tar never named but wrote
    /// below is refused: those entries went wherever the lower layers' path led (through a
    /// symlink there, elsewhere), which the layer alone cannot tell.
    pub(super) fn replacing(&mut self, parent: &MutableTree, e: &Entry) -> Result<(), LayerError> {
        let name = e.path.last().expect("entries below the root have a name");
        let here = path::join(&e.path);
        let is_dir = e.kind == EntryKind::Dir;
        let below = format!("{here}/");
        // Entries written below `here` that left nothing in its tree: a hardlink waiting for
        // its target, a skipped device node or FIFO.
        let wrote_below = self
            .pending_links
            .iter()
            .any(|(l, _)| path::join(&l.path).starts_with(&below))
            || self.skipped.iter().any(|s| s.path.starts_with(&below));
        self.pending_links.retain(|(l, _)| {
            let p = path::join(&l.path);
            p != here && (is_dir || !p.starts_with(&below))
        });
        match mtree::get(parent, name).map_err(ostree_err(&e.path, "reading tree"))? {
            Some(Node::File(_)) if is_dir => {
                self.replaced_dirs.insert(here);
            }
            Some(Node::Dir(d)) if !is_dir && self.implicit.contains(&here) => {
                if d.copy_files().is_empty() && d.copy_subdirs().is_empty() {
                    // Those entries went through whatever the lower layers have here:
                    // refused over a non-directory when the layer is applied.
                    if wrote_below {
                        self.late_dirs.insert(here);
                    }
                    return Ok(());
                }
                return Err(LayerError::EntryConflict {
                    path: e.raw_path.clone(),
                    reason: format!(
                        "this {} replaces directory {here:?}, which the layer wrote entries below \
                         without creating it: where they went depends on the lower layers",
                        e.kind.describe()
                    ),
                });
            }
            Some(Node::Dir(_)) if !is_dir => {
                // A directory the tar named, replaced: the directories below it the tar never
                // named went wherever the lower layers' paths led (through a symlink there,
                // or failing on a file) before the replacement removed them. Refused over a
                // lower non-directory when the layer is applied, as a late directory is.
                let dropped: Vec<String> = (self.implicit.range(below.clone()..))
                    .take_while(|p| p.starts_with(&below))
                    .cloned()
                    .collect();
                self.late_dirs.extend(dropped);
            }
            _ => {}
        }
        Ok(())
    }

    /// Links `e` to `target` if the target is in this layer's tree; `false` if it is not (yet).
    pub(super) fn link(
        &self,
        parent: &MutableTree,
        e: &Entry,
        target: &[String],
    ) -> Result<bool, LayerError> {
        let name = e.path.last().expect("links have a name");
        let marker = target
            .last()
            .is_some_and(|n| whiteout::classify(n) != Whiteout::None);
        match mtree::get_path(&self.root, target).map_err(ostree_err(&e.path, "reading tree"))? {
            Some(Node::File(_)) if marker => Err(LayerError::BadHardlink {
                path: e.raw_path.clone(),
                target: path::join(target),
                reason: "is a whiteout marker",
            }),
            Some(Node::File(csum)) => {
                mtree::replace_with_file(parent, name, &csum)
                    .map_err(ostree_err(&e.path, "adding hardlink"))?;
                Ok(true)
            }
            Some(Node::Dir(_)) => Err(LayerError::BadHardlink {
                path: e.raw_path.clone(),
                target: path::join(target),
                reason: "is a directory",
            }),
            None => Ok(false),
        }
    }

    /// Resolves hardlinks whose target came later in the tar; the rest point into lower layers.
    pub(super) fn resolve_pending_links(&mut self) -> Result<(), LayerError> {
        for (e, target) in std::mem::take(&mut self.pending_links) {
            let parent = self
                .parent_dir(&e.raw_path, &e.path[..e.path.len() - 1], false)?
                .expect("replaces files");
            let link = (path::join(&e.path), path::join(&target));
            // Not in this layer when the link was written, a directory of it now: in tar
            // order the link took the lower layers' file, before the directory replaced it.
            if let Some(Node::Dir(_)) =
                mtree::get_path(&self.root, &target).map_err(ostree_err(&e.path, "reading tree"))?
            {
                self.early_links.push(link);
                continue;
            }
            if self.link(&parent, &e, &target)? {
                self.forward_links.push(link);
            } else {
                self.external_links.push(link);
            }
        }
        Ok(())
    }
}

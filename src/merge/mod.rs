//! Layer commits → the merged image tree, built at the tree level without a checkout.
//!
//! The merged tree starts empty; each layer is applied in order by [`apply::Merger::apply_layer`].
//! Subtrees that a layer adds wholesale (nothing below them in the lower layers, no whiteouts
//! or lower-layer hardlinks inside) are grafted by checksum with
//! [`ostree::MutableTree::fill_empty_from_dirtree`] and never walked, so the cost of a merge
//! grows with the overlap between layers, not with their size.

pub mod apply;
pub mod layer_tree;
mod order;

use ostree::{MutableTree, Repo};

use crate::error::LayerError;
pub use layer_tree::LayerTree;

/// The version of the merge's rules ([`apply`]), part of the record of how an image's tree
/// was built ([`crate::import::up_to_date`]): raise it when the same layer commits could
/// merge into another tree, or be refused, so that images merged before are merged again.
/// 2: an entry reached through a lower symlink at a path the same layer changes, into a
/// directory where it meets the layer's own entries there, onto a symlink of its own way, or
/// where another way through a lower symlink leads, is refused.
pub const VERSION: u32 = 2;

/// Puts each layer in its own directory of an empty tree (`--layers per-dir`): every layer is
/// applied alone (so its whiteout markers do not show) and grafted by checksum under its name.
///
/// # Errors
/// The layer whose application failed, with its error.
pub fn per_dir(
    repo: &Repo,
    layers: &[(String, LayerTree)],
) -> Result<MutableTree, (usize, LayerError)> {
    let err = |i, op| {
        move |cause| {
            (
                i,
                LayerError::Ostree {
                    path: String::new(),
                    op,
                    cause,
                },
            )
        }
    };
    let root = MutableTree::new();
    let default_meta =
        crate::layer::object::default_dirmeta(repo).map_err(err(0, "writing dirmeta"))?;
    root.set_metadata_checksum(&default_meta);
    for (i, (name, layer)) in layers.iter().enumerate() {
        let alone = merge_layers(repo, std::slice::from_ref(layer)).map_err(|(_, e)| (i, e))?;
        let (contents, meta) =
            crate::repo::write_tree(repo, &alone).map_err(err(i, "writing layer tree"))?;
        let dir =
            crate::mtree::replace_with_dir(&root, name).map_err(err(i, "adding directory"))?;
        dir.fill_empty_from_dirtree(repo, &contents, &meta);
    }
    Ok(root)
}

/// Applies `layers` in order onto an empty tree and returns it.
///
/// # Errors
/// The layer whose application failed, with its error.
pub fn merge_layers(repo: &Repo, layers: &[LayerTree]) -> Result<MutableTree, (usize, LayerError)> {
    let root = MutableTree::new();
    let default_meta = crate::layer::object::default_dirmeta(repo).map_err(|cause| {
        (
            0,
            LayerError::Ostree {
                path: String::new(),
                op: "writing dirmeta",
                cause,
            },
        )
    })?;
    root.set_metadata_checksum(&default_meta);
    let mut merger = apply::Merger::new(repo, &root, default_meta);
    for (i, layer) in layers.iter().enumerate() {
        merger.apply_layer(layer).map_err(|e| (i, e))?;
    }
    Ok(root)
}

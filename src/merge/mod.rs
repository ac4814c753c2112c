//! Layer commits → the merged image tree, built at the tree level without a checkout.
//!
//! The merged tree starts empty; each layer is applied in order by [`apply::Merger::apply_layer`].
//! Subtrees that a layer adds wholesale (nothing below them in the lower layers, no whiteouts
//! or lower-layer hardlinks inside) are grafted by checksum with
//! [`ostree::MutableTree::fill_empty_from_dirtree`] and never walked, so the cost of a merge
//! grows with the overlap between layers, not with their size.

pub mod apply;
pub mod layer_tree;

use ostree::{MutableTree, Repo};

use crate::error::LayerError;
pub use layer_tree::LayerTree;

/// Applies `layers` in order onto an empty tree and returns it. `on_error` names each layer.
///
/// # Errors
/// The layer whose application failed, with its error.
pub fn merge_layers(repo: &Repo, layers: &[LayerTree]) -> Result<MutableTree, (usize, LayerError)> {
    let root = MutableTree::new();
    let default_meta = crate::layer::writer::default_dirmeta(repo).map_err(|cause| {
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

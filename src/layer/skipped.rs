//! Entries OSTree cannot store (device nodes, FIFOs): reported, or fatal under
//! [`OnSpecial::Fail`].

use crate::error::LayerError;

/// What to do with an entry OSTree cannot store.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
#[non_exhaustive]
pub enum OnSpecial {
    /// Leave it out and report it in [`crate::import::ImportReport::skipped`] (the default).
    #[default]
    Skip,
    /// Fail the import (`--strict`).
    Fail,
}

/// One entry left out of a layer.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Skipped {
    /// The layer's blob digest.
    pub layer: String,
    /// The entry path, relative to the root.
    pub path: String,
    /// What it was (for example `character device 1:3`).
    pub kind: String,
}

/// The entries stored layer commit `commit` (of blob `layer`) left out, as its import recorded
/// them ([`crate::meta::LAYER_SKIPPED`]): a layer read once is never read again, so an import
/// reusing it reports them from here, or under [`OnSpecial::Fail`] refuses the first, as
/// reading the layer would have.
///
/// # Errors
/// [`LayerError::UnsupportedEntry`] under [`OnSpecial::Fail`]; libostree cannot load the commit.
pub fn reused(
    repo: &ostree::Repo,
    commit: &str,
    layer: &str,
    on_special: OnSpecial,
) -> Result<Vec<Skipped>, LayerError> {
    let v = repo
        .load_variant(ostree::ObjectType::Commit, commit)
        .map_err(|cause| LayerError::Ostree {
            path: String::new(),
            op: "reading the layer's skipped entries",
            cause,
        })?;
    let dict = ostree::glib::VariantDict::new(Some(&v.child_value(0)));
    let entries: Vec<(String, String)> = dict
        .lookup(crate::meta::LAYER_SKIPPED)
        .ok()
        .flatten()
        .unwrap_or_default();
    if let (OnSpecial::Fail, Some((path, kind))) = (on_special, entries.first()) {
        return Err(LayerError::UnsupportedEntry {
            path: path.clone(),
            kind: kind.clone(),
        });
    }
    Ok(entries
        .into_iter()
        .map(|(path, kind)| Skipped {
            layer: layer.to_string(),
            path,
            kind,
        })
        .collect())
}

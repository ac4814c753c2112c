//! Entries OSTree cannot store (device nodes, FIFOs): reported, or fatal under
//! [`OnSpecial::Fail`].

/// What to do with an entry OSTree cannot store.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
#[non_exhaustive]
pub enum OnSpecial {
    /// Leave it out and report it in [`crate::ImportReport::skipped`] (the default).
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

/// The entries a stored layer commit left out, as its import recorded them
/// ([`crate::meta::LAYER_SKIPPED`]): a layer read once is never read again, so a later import
/// reusing it reports (or, under [`OnSpecial::Fail`], refuses) them from here.
///
/// # Errors
/// libostree cannot load the commit.
pub fn recorded(
    repo: &ostree::Repo,
    commit: &str,
    layer: &str,
) -> Result<Vec<Skipped>, ostree::glib::Error> {
    let v = repo.load_variant(ostree::ObjectType::Commit, commit)?;
    let dict = ostree::glib::VariantDict::new(Some(&v.child_value(0)));
    let entries: Vec<(String, String)> = dict
        .lookup(crate::meta::LAYER_SKIPPED)
        .ok()
        .flatten()
        .unwrap_or_default();
    Ok(entries
        .into_iter()
        .map(|(path, kind)| Skipped {
            layer: layer.to_string(),
            path,
            kind,
        })
        .collect())
}

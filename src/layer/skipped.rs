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

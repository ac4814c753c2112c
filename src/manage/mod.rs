//! Jobs on the images a repository holds, beside import and export: removing one
//! ([`remove()`], `ocitree rm`) and garbage collection ([`prune()`], `ocitree prune`). Both keep
//! what the repository serves current ([`crate::serve`]: summary, deltas) and the refs import
//! made for bound commits ([`crate::image::bound`]).

pub mod prune;
pub mod remove;

pub use prune::{PruneReport, prune};
pub use remove::{RemoveReport, remove};

//! # ocitree: OCI images ⇄ OSTree commits
//!
//! ocitree imports OCI container images into an OSTree repository as deduplicated commits:
//! each layer becomes its own commit (shared by every image that uses it, never read twice) and
//! the image becomes one merged commit, built at the tree level from the layer commits.
//!
//! ## Data flow
//!
//! ```text
//! import:  source (oci dir | oci-archive | registry | stdin)   source::, registry::
//!            -> index -> manifest (tag, digest, platform)      resolve
//!            -> how to read it: plain | encapsulated | native  image::format
//!            -> per layer, one pass, four threads:
//!               blob -> digest + size check                    blob::VerifiedReader
//!                    -> gzip | zstd | none                     decompress
//!                    -> diff_id check (own thread)             layer::stream
//!                    -> tar entries                            entries::
//!                    -> file objects (own thread)              layer::write_queue
//!                    -> layer commit                           layer::
//!            -> merge of layer trees (whiteouts, opaque dirs)  merge::
//!            -> image commit + ref                             image::
//! ```
//! The whole import is one libostree transaction ([`import::import`]).
//!
//! ```text
//! export:  image commit -> layer tars rebuilt from tar-split       export::image
//!          any commit   -> walk -> chunk -> deterministic tars     export::encapsulate
//!            -> gzip | zstd | none, digests on the way             export::layer
//!            -> oci dir | oci-archive | docker-archive             export::sink
//! ```
//!
//! ```text
//! rm, prune: image ref -> layer refs and bound refs no image uses  manage::
//!              -> unreachable objects                              repo::prune
//!              -> summary and deltas kept current                  serve::
//! ```
//!
//! ## On-repo format
//!
//! Refs (built only in [`refname`]; names escaped so any image name is a valid ref):
//! - `ocitree/image/<escaped name>` → image commit (the merged tree)
//! - `ocitree/blob/<alg>/<hex>` → layer commit, by blob digest
//! - `ocitree/diffid/<alg>/<hex>` → the same layer commit, by diff_id
//! - `ocitree/encapsulated/<escaped name>` → the record of an image whose image ref points at an
//!   encapsulated commit ([`image::encapsulated`])
//! - `ocitree/bound/<escaped ref>` → the commit ocitree set bound ref `<ref>` to: the refs
//!   outside `ocitree/` that an imported commit is bound to are ocitree's (to move or delete)
//!   only while so marked ([`image::bound`])
//!
//! A layer commit holds the layer's files as the tar had them, whiteout markers included as
//! plain files; its timestamp is 0. An image commit's timestamp is the config's `created`.
//! Commit metadata keys are listed in [`meta`].

pub mod blob;
pub mod browse;
pub mod decompress;
pub mod digest;
pub mod entries;
pub mod error;
pub mod export;
pub mod image;
pub mod import;
pub mod layer;
pub mod manage;
pub mod merge;
pub mod meta;
pub mod mtree;
pub mod par_deflate;
pub mod progress;
pub mod refname;
pub mod registry;
pub mod repo;
pub mod resolve;
pub mod select;
pub mod serve;
pub mod sign;
pub mod source;
pub mod spec;
#[cfg(test)]
mod testing;

pub use error::{Error, LayerError, Result};
pub use import::{ImportOptions, ImportReport, import};
pub use layer::{OnSpecial, Skipped};
pub use ostree::{self, gio, glib};

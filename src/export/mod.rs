//! The export path, mirroring the import: commits → layer tars → compressed blobs
//! ([`compress`]: on every core, deterministic) → a [`sink::Sink`] (an OCI layout, an OCI
//! archive or a docker archive), or a registry ([`push`]).
//!
//! Two sources of layers:
//! - [`export_image`]: an imported image. Every layer tar is rebuilt byte for byte from the
//!   layer commit's tar-split ([`crate::layer::tarsplit`]) and must match the diff_id recorded
//!   at import, so the config (kept byte for byte) stays true. Layers are compressed as they
//!   were (gzip, zstd or none) or as [`ExportOptions::compression`] says; an uncompressed layer
//!   keeps its blob digest. A gzip layer whose original bytes import could record (feature
//!   `exact-gzip`, module `layer::exact_gzip`) is rebuilt bit for bit and keeps its digest
//!   too; the others get new digests unless the compressor reproduces them, and the report
//!   says which ([`LayerExport`]). Artifact layers are copied back unchanged.
//! - [`encapsulate()`]: any commit. Its tree is written as deterministic tars and the commit
//!   object rides along, so that `import` gives back the identical commit: in ocitree's own
//!   format, or (the default for bootable commits) as an ostree native container that bootc
//!   and ostree-ext read ([`encapsulate::native`]).

pub mod compress;
pub mod encapsulate;
pub mod file_tree;
pub mod image;
pub mod index_of;
pub mod layer;
pub mod push;
pub mod sink;
pub mod staging;

pub use compress::LayerCompression;
pub use encapsulate::{EncapsulateFormat, EncapsulateOptions, EncapsulateReport, encapsulate};
pub use image::{BlobMethod, ExportOptions, ExportReport, LayerExport, export_image};
pub use index_of::{IndexReport, export_index};
pub use push::{push_encapsulated, push_image};

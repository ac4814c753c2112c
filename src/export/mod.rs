//! The export path, mirroring the import: image commit → layer commits → tar streams rebuilt
//! byte for byte from tar-split ([`crate::layer::tarsplit`]) → compressed blobs → an OCI
//! layout (directory or archive) or a docker archive, with the original config.
//!
//! Every rebuilt layer is hashed while it is written and must match the diff_id recorded at
//! import, so the config (kept byte for byte) stays true. Layers are compressed as they were
//! (gzip, zstd or none) or as [`ExportOptions::compression`] says ([`compress`]: on every
//! core, deterministic); an uncompressed layer keeps its blob digest, a compressed one gets a
//! new one unless the compressor reproduces it, and the report says which.

pub mod compress;
pub mod docker_archive;
pub mod layer;
pub mod oci_layout;

pub use compress::LayerCompression;
pub use oci_layout::{ExportOptions, ExportReport, export_image};

//! The export path, mirroring the import: image commit → layer commits → tar streams rebuilt
//! byte for byte from tar-split ([`crate::layer::tarsplit`]) → compressed blobs → an OCI
//! layout (directory or archive) or a docker archive, with the original config.
//!
//! Every rebuilt layer is hashed while it is written and must match the diff_id recorded at
//! import, so the config (kept byte for byte) stays true. Layers are compressed as they were
//! (gzip, zstd or none); an uncompressed layer keeps its blob digest. A gzip layer whose
//! original bytes import could record (feature `exact-gzip`, module `layer::exact_gzip`) is
//! rebuilt bit for bit and keeps its digest too; the others are re-compressed deterministically
//! and get new digests. The report says which ([`LayerExport`]).

pub mod docker_archive;
pub mod layer;
pub mod oci_layout;

pub use oci_layout::{BlobMethod, ExportReport, LayerExport, export_image};

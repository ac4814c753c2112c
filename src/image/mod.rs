//! The image commit and what hangs off it: the ways an image is read ([`mod@format`]), writing
//! the commit, reading it back, finding layers and images by ref, the record of encapsulated
//! commits, the refs their commits are bound to, the rebuild of ostree native containers'
//! commits. Removing images and garbage collection are [`crate::manage`]'s.

pub mod bound;
pub mod commit;
pub mod encapsulated;
pub mod file_tree;
pub mod flatpak;
pub mod format;
pub mod info;
pub mod ostree_native;
pub mod refs;

pub use commit::{ImageMeta, write_image_commit};
pub use encapsulated::EncapsulatedCommit;
pub use format::{ImageFormat, Reading};
pub use info::ImageInfo;

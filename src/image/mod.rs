//! The image commit and what hangs off it: writing it, reading it back, finding layers and
//! images by ref, and garbage collection.

pub mod commit;
pub mod gc;
pub mod info;
pub mod refs;

pub use commit::{ImageMeta, write_image_commit};
pub use gc::{PruneReport, prune};
pub use info::ImageInfo;

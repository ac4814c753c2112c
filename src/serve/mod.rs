//! What a served repository offers `ostree pull` clients beside the commits: the summary
//! (current after every change, signed with the configured keys) and static deltas between
//! versions of an image; on a flatpak remote, flatpak's own summary index.

pub mod delta;
pub mod flatpak;
pub mod summary;

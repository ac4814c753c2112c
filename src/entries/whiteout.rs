//! Whiteout classification (OCI image-spec `layer.md`, "Whiteouts").

/// The name of the opaque-directory marker.
pub const OPAQUE: &str = ".wh..wh..opq";
/// The prefix that makes a file a whiteout.
pub const PREFIX: &str = ".wh.";

/// What a directory entry's name means for layer application.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Whiteout<'a> {
    /// An ordinary entry.
    None,
    /// `.wh.NAME`: deletes `NAME` from the lower layers.
    Remove(&'a str),
    /// `.wh..wh..opq`: hides every lower child of the directory.
    Opaque,
    /// Another `.wh..wh.` name (aufs bookkeeping such as `.wh..wh.plnk`): neither data nor a
    /// whiteout; ignored when applying, kept in the layer commit.
    Meta,
}

/// Classifies a single file name (not a path).
///
/// # Examples
/// ```
/// use ocitree::entries::whiteout::{classify, Whiteout};
/// assert_eq!(classify(".wh.foo"), Whiteout::Remove("foo"));
/// assert_eq!(classify(".wh..wh..opq"), Whiteout::Opaque);
/// assert_eq!(classify("foo.wh."), Whiteout::None);
/// ```
pub fn classify(name: &str) -> Whiteout<'_> {
    if name == OPAQUE {
        Whiteout::Opaque
    } else if name.starts_with(".wh..wh.") {
        Whiteout::Meta
    } else if let Some(target) = name.strip_prefix(PREFIX) {
        if target.is_empty() || target == "." || target == ".." {
            Whiteout::Meta
        } else {
            Whiteout::Remove(target)
        }
    } else {
        Whiteout::None
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn classes() {
        assert_eq!(classify(".wh..wh.plnk"), Whiteout::Meta);
        assert_eq!(classify(".wh."), Whiteout::Meta);
        assert_eq!(classify(".wh..."), Whiteout::Meta);
        assert_eq!(classify(".wh..hidden"), Whiteout::Remove(".hidden"));
        assert_eq!(classify("a"), Whiteout::None);
    }
}

//! Whiteout classification (OCI image-spec `layer.md`, "Whiteouts").
//!
//! Rules (the spec says implementations SHOULD error on invalid whiteouts; ocitree does):
//! - `.wh..wh..opq` is the opaque marker, in any directory.
//! - `.wh.NAME` removes `NAME`, which must be a single valid path component: `.wh.` (empty
//!   target), `.wh..` and `.wh...` are errors.
//! - The AUFS bookkeeping names `.wh..wh.plnk`, `.wh..wh.aufs` and `.wh..wh.orph` are accepted
//!   at the root only (where Docker's AUFS driver writes them) and hidden from the merged tree,
//!   with everything below them; regular files under `.wh..wh.plnk` still serve as hardlink
//!   targets, so links to them become regular files of the merged tree.
//! - Any other `.wh..wh.` name is an error (it has no meaning in any spec), and so is a
//!   whiteout name used as a directory of an entry's path (except the AUFS directories).

/// The name of the opaque-directory marker.
pub const OPAQUE: &str = ".wh..wh..opq";
/// The prefix that makes a file a whiteout.
pub const PREFIX: &str = ".wh.";
/// The prefix of the names reserved for whiteout metadata.
pub const META_PREFIX: &str = ".wh..wh.";
/// AUFS metadata names (Docker's AUFS driver), meaningful at the root only.
pub const AUFS: [&str; 3] = [".wh..wh.plnk", ".wh..wh.aufs", ".wh..wh.orph"];

/// What a directory entry's name means for layer application.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Whiteout<'a> {
    /// An ordinary entry.
    None,
    /// `.wh.NAME`: deletes `NAME` from the lower layers.
    Remove(&'a str),
    /// `.wh..wh..opq`: hides every lower child of the directory.
    Opaque,
    /// AUFS bookkeeping (`.wh..wh.plnk`, `.wh..wh.aufs`, `.wh..wh.orph`): neither data nor a
    /// whiteout; hidden when applying, kept in the layer commit.
    Aufs,
    /// A `.wh.` name that is no valid whiteout; the reason.
    Invalid(&'static str),
}

/// Classifies a single file name (not a path).
///
/// # Examples
/// ```
/// use ocitree::entries::whiteout::{classify, Whiteout};
/// assert_eq!(classify(".wh.foo"), Whiteout::Remove("foo"));
/// assert_eq!(classify(".wh..wh..opq"), Whiteout::Opaque);
/// assert_eq!(classify("foo.wh."), Whiteout::None);
/// assert!(matches!(classify(".wh.."), Whiteout::Invalid(_)));
/// ```
pub fn classify(name: &str) -> Whiteout<'_> {
    if name == OPAQUE {
        Whiteout::Opaque
    } else if AUFS.contains(&name) {
        Whiteout::Aufs
    } else if name.starts_with(META_PREFIX) {
        Whiteout::Invalid(
            "unknown .wh..wh. name (only .wh..wh..opq and AUFS metadata have a meaning)",
        )
    } else if let Some(target) = name.strip_prefix(PREFIX) {
        match target {
            "" => Whiteout::Invalid("empty whiteout target"),
            "." | ".." => Whiteout::Invalid("whiteout target is not a file name"),
            _ => Whiteout::Remove(target),
        }
    } else {
        Whiteout::None
    }
}

/// Classifies the last component of a normalised entry path and checks the whiteout names of
/// the whole path (see the module documentation).
///
/// # Errors
/// Why the path holds an invalid whiteout name.
pub fn check_path(path: &[String]) -> Result<Whiteout<'_>, &'static str> {
    let Some((name, parents)) = path.split_last() else {
        return Ok(Whiteout::None);
    };
    for (i, p) in parents.iter().enumerate() {
        let aufs_dir = i == 0 && (p == AUFS[0] || p == AUFS[2]);
        if p.starts_with(PREFIX) && !aufs_dir {
            return Err("a whiteout name used as a directory");
        }
    }
    match classify(name) {
        Whiteout::Invalid(why) => Err(why),
        Whiteout::Aufs if !parents.is_empty() => {
            Err("AUFS metadata below the root (AUFS writes it at the root only)")
        }
        w => Ok(w),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn path(p: &str) -> Vec<String> {
        p.split('/').map(String::from).collect()
    }

    #[test]
    fn classes() {
        assert_eq!(classify(".wh..wh.plnk"), Whiteout::Aufs);
        assert_eq!(classify(".wh..hidden"), Whiteout::Remove(".hidden"));
        assert_eq!(classify(".wh...x"), Whiteout::Remove("..x"));
        assert_eq!(classify("a"), Whiteout::None);
        for bad in [
            ".wh.",
            ".wh..",
            ".wh...",
            ".wh..wh.",
            ".wh..wh.foo",
            ".wh..wh..opqx",
        ] {
            assert!(matches!(classify(bad), Whiteout::Invalid(_)), "{bad}");
        }
    }

    #[test]
    fn paths() {
        assert_eq!(check_path(&path("a/.wh.b")), Ok(Whiteout::Remove("b")));
        assert_eq!(check_path(&path(".wh..wh.plnk/1.2")), Ok(Whiteout::None));
        assert_eq!(check_path(&path(".wh..wh.orph/x")), Ok(Whiteout::None));
        assert_eq!(check_path(&path(".wh..wh.aufs")), Ok(Whiteout::Aufs));
        for bad in [
            "a/.wh..wh.plnk",
            "a/.wh.x/y",
            ".wh..wh.aufs/x",
            "a/.wh.",
            "x/.wh..wh..opq/y",
        ] {
            assert!(check_path(&path(bad)).is_err(), "{bad}");
        }
    }
}

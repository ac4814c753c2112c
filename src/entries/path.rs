//! Entry path normalisation.
//!
//! # Security
//! A tar path is untrusted. [`normalize`] strips `/` and `./` prefixes, drops `.` and empty
//! components and resolves `..` lexically; a `..` that would climb above the root is an error,
//! never clamped silently. The result contains only components OSTree accepts as file names,
//! none longer than [`NAME_MAX`] bytes.

use crate::error::{LayerError, quote_head, quote_tail};

/// Longest file name (one path component) in bytes: Linux's `NAME_MAX`. OSTree stores longer
/// names, but no checkout of them can be made on Linux filesystems.
pub const NAME_MAX: usize = 255;

/// Longest symlink target in bytes: Linux's `PATH_MAX` less its NUL. OSTree stores longer
/// targets, but no checkout of them can be made (`symlinkat` fails with `ENAMETOOLONG`).
pub const SYMLINK_MAX: usize = 4095;

/// Splits a tar path into normalised components (empty for the root itself).
///
/// # Errors
/// [`LayerError::PathEscapesRoot`] for a `..` above the root, [`LayerError::NonUtf8Name`] for a
/// component that is not UTF-8, [`LayerError::UnsupportedEntry`] for a component longer than
/// [`NAME_MAX`] or holding a NUL byte (possible in PAX `path` records; no file name can).
///
/// # Examples
/// ```
/// use ocitree::entries::path::normalize;
/// assert_eq!(normalize(b"./usr//bin/./sh").unwrap(), ["usr", "bin", "sh"]);
/// assert_eq!(normalize(b"/a/b/../c").unwrap(), ["a", "c"]);
/// assert!(normalize(b"a/../../etc/passwd").is_err());
/// ```
pub fn normalize(raw: &[u8]) -> Result<Vec<String>, LayerError> {
    let mut out: Vec<String> = Vec::new();
    for comp in raw.split(|&b| b == b'/') {
        match comp {
            b"" | b"." => {}
            b".." => {
                if out.pop().is_none() {
                    return Err(LayerError::PathEscapesRoot { path: lossy(raw) });
                }
            }
            name if name.contains(&0) => {
                return Err(LayerError::UnsupportedEntry {
                    path: lossy(raw),
                    kind: "file name with a NUL byte".into(),
                });
            }
            name if name.len() > NAME_MAX => {
                return Err(LayerError::UnsupportedEntry {
                    path: lossy(raw),
                    kind: format!(
                        "file name of {} bytes (longer than {NAME_MAX}: no Linux filesystem \
                         can hold it)",
                        name.len()
                    ),
                });
            }
            name => match std::str::from_utf8(name) {
                Ok(s) => out.push(s.to_string()),
                Err(_) => {
                    return Err(LayerError::NonUtf8Name {
                        path: lossy(raw),
                        what: crate::error::NonUtf8::FileName,
                        bytes: escape_bytes(raw),
                    });
                }
            },
        }
    }
    Ok(out)
}

/// Joins components back into a relative path (`""` for the root).
pub fn join(comps: &[String]) -> String {
    comps.join("/")
}

/// A path for messages: lossy UTF-8. (Messages show at most
/// [`QUOTE_MAX`](crate::error::QUOTE_MAX) bytes of it: see [`crate::error::cut`].)
pub fn lossy(raw: &[u8]) -> String {
    String::from_utf8_lossy(raw).into_owned()
}

/// Bytes with non-printable and non-ASCII bytes written as `\xNN`: the first
/// [`QUOTE_MAX`](crate::error::QUOTE_MAX) of them, and how many there are when there are more.
///
/// # Examples
/// ```
/// use ocitree::entries::path::escape_bytes;
/// assert_eq!(escape_bytes(b"caf\xe9"), "caf\\xe9");
/// assert!(escape_bytes(&vec![0xff; 1 << 20]).ends_with("\\xff… (1048576 bytes)"));
/// ```
pub fn escape_bytes(raw: &[u8]) -> String {
    let (head, _) = quote_head(raw);
    head.iter()
        .flat_map(|b| std::ascii::escape_default(*b))
        .map(char::from)
        .chain(quote_tail(raw).chars())
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn prefixes_and_dots() {
        assert_eq!(normalize(b"./").unwrap(), Vec::<String>::new());
        assert_eq!(normalize(b"/").unwrap(), Vec::<String>::new());
        assert_eq!(normalize(b"//etc/").unwrap(), ["etc"]);
        assert_eq!(normalize(b"a/..").unwrap(), Vec::<String>::new());
        assert_eq!(normalize(b"..a/b..").unwrap(), ["..a", "b.."]);
    }

    #[test]
    fn escapes_are_errors() {
        for p in [&b"../x"[..], b"/../x", b"a/../../x", b"./.."] {
            assert!(
                matches!(normalize(p), Err(LayerError::PathEscapesRoot { .. })),
                "{p:?}"
            );
        }
    }

    #[test]
    fn long_names_are_errors() {
        let ok = format!("d/{}", "x".repeat(NAME_MAX));
        assert_eq!(normalize(ok.as_bytes()).unwrap().len(), 2);
        let long = format!("d/{}/f", "x".repeat(NAME_MAX + 1));
        let e = normalize(long.as_bytes()).unwrap_err().to_string();
        assert!(
            e.contains("file name of 256 bytes") && e.contains(&long),
            "{e}"
        );
    }

    /// Found by the whole-image fuzz: a PAX path with a NUL byte reached libostree's C-string
    /// conversion and panicked.
    #[test]
    fn nul_bytes_are_errors() {
        let e = normalize(b"etc/a\x00b").unwrap_err().to_string();
        assert!(e.contains("NUL byte") && e.contains(r"etc/a\0b"), "{e}");
    }

    #[test]
    fn non_utf8_is_named() {
        let e = normalize(b"dir/caf\xe9").unwrap_err().to_string();
        assert!(e.contains("caf\\xe9"), "{e}");
    }
}

//! Extended attributes from PAX `SCHILY.xattr.NAME` records, binary-safe, in OSTree's form.

use ostree::glib;

/// The PAX record prefix that carries one xattr.
pub const PAX_PREFIX: &str = "SCHILY.xattr.";

/// A sorted list of `(name, value)` xattrs; names without the trailing NUL.
pub type Xattrs = Vec<(Vec<u8>, Vec<u8>)>;

/// Collects the xattrs of a tar entry's PAX records, sorted by name (later records win).
///
/// # Errors
/// The PAX records could not be parsed.
pub fn from_pax<'a>(
    records: impl Iterator<Item = std::io::Result<tar::PaxExtension<'a>>>,
) -> std::io::Result<Xattrs> {
    let mut map = std::collections::BTreeMap::new();
    for rec in records {
        let rec = rec?;
        if let Some(name) = rec.key_bytes().strip_prefix(PAX_PREFIX.as_bytes()) {
            map.insert(name.to_vec(), rec.value_bytes().to_vec());
        }
    }
    Ok(map.into_iter().collect())
}

/// Largest xattr name Linux sets (`XATTR_NAME_MAX`).
const NAME_MAX: usize = 255;

/// Largest xattr value Linux sets (`XATTR_SIZE_MAX`).
const VALUE_MAX: usize = 64 << 10;

/// The namespaces Linux knows; a name in none of them cannot be set.
const NAMESPACES: [&[u8]; 4] = [b"user.", b"trusted.", b"security.", b"system."];

/// Why xattr `name` with `value` cannot be stored as it was meant, if it cannot: a name
/// holding a NUL byte (libostree and Linux cut it there, so it would set another attribute:
/// `user.a\0z` sets `user.a`), an empty or over-long name, one outside Linux's namespaces, or
/// a value longer than Linux sets. No checkout could set them.
pub fn invalid(name: &[u8], value: &[u8]) -> Option<String> {
    if name.contains(&0) {
        Some("holds a NUL byte: it would be stored as the name before it".into())
    } else if name.len() > NAME_MAX {
        Some(format!(
            "is {} bytes long (Linux allows {NAME_MAX})",
            name.len()
        ))
    } else if !NAMESPACES
        .iter()
        .any(|ns| name.len() > ns.len() && name.starts_with(ns))
    {
        Some("is not in a namespace Linux knows (user., trusted., security., system.)".into())
    } else if value.len() > VALUE_MAX {
        Some(format!(
            "has a value of {} bytes (Linux allows {VALUE_MAX})",
            value.len()
        ))
    } else {
        None
    }
}

/// The `a(ayay)` variant OSTree stores: names NUL-terminated (as `ostree commit` writes them).
pub fn to_variant(xattrs: &Xattrs) -> glib::Variant {
    let v: Vec<(Vec<u8>, Vec<u8>)> = xattrs
        .iter()
        .map(|(n, v)| {
            let mut name = n.clone();
            name.push(0);
            (name, v.clone())
        })
        .collect();
    glib::variant::ToVariant::to_variant(&v)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_linux_cannot_set_are_invalid() {
        assert_eq!(invalid(b"user.a", b"x"), None);
        assert_eq!(invalid(b"security.capability", &[0; 20]), None);
        assert!(invalid(b"user.a\0z", b"x").unwrap().contains("NUL"));
        assert!(invalid(b"", b"x").is_some());
        assert!(invalid(b"user.", b"x").is_some());
        assert!(invalid(b"foo", b"x").unwrap().contains("namespace"));
        assert!(invalid(&[b'u'; 256], b"x").is_some());
        let long = [b"user.".as_slice(), &[b'a'; 250]].concat();
        assert_eq!(invalid(&long, b"x"), None);
        assert!(invalid(b"user.a", &vec![0; (64 << 10) + 1]).is_some());
    }
}

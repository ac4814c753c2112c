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

/// Why xattr `name` cannot be stored as it is named, if it cannot: a name holding a NUL byte
/// (libostree and Linux cut it there, so it would set another attribute: `user.a\0z` sets
/// `user.a`, over the file's own), or an empty one.
///
/// Names Linux cannot set (another system's, as `com.apple.provenance` in layers tarred on
/// macOS; over 255 bytes) and values over 64 KiB are kept as they are: the image holds them,
/// an export gives them back, and a checkout that sets xattrs fails on them, naming them.
pub fn invalid(name: &[u8]) -> Option<&'static str> {
    if name.contains(&0) {
        Some("holds a NUL byte: it would be set as the name before it")
    } else if name.is_empty() {
        Some("is empty")
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
    fn only_names_that_would_set_another_name_are_invalid() {
        assert_eq!(invalid(b"user.a"), None);
        assert_eq!(invalid(b"security.capability"), None);
        assert_eq!(invalid(b"com.apple.provenance"), None);
        assert_eq!(invalid(&[b'u'; 300]), None);
        assert!(invalid(b"user.a\0z").unwrap().contains("NUL"));
        assert!(invalid(b"").is_some());
    }
}

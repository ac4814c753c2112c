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

//! Writing the image commit: the merged tree plus the metadata of [`crate::meta`].

use ostree::{MutableTree, Repo, glib};

use crate::error::{Error, Result};
use crate::meta;

/// Everything recorded on an image commit besides its tree.
#[derive(Clone, Debug)]
pub struct ImageMeta<'a> {
    /// Local name.
    pub name: &'a str,
    /// Source reference.
    pub source: &'a str,
    /// Manifest bytes.
    pub manifest: &'a str,
    /// Manifest digest.
    pub manifest_digest: &'a str,
    /// Config bytes.
    pub config: &'a str,
    /// Layer blob digests.
    pub layers: Vec<String>,
    /// diff_ids.
    pub diff_ids: Vec<String>,
    /// Commit timestamp.
    pub timestamp: u64,
    /// For the record of an encapsulated commit: that commit's checksum.
    pub encapsulated: Option<&'a str>,
}

/// Writes the merged tree and the image commit; returns the commit checksum.
///
/// # Errors
/// libostree fails.
pub fn write_image_commit(repo: &Repo, tree: &MutableTree, m: &ImageMeta<'_>) -> Result<String> {
    let dict = glib::VariantDict::new(None);
    dict.insert(meta::NAME, m.name);
    dict.insert(meta::SOURCE, m.source);
    dict.insert(meta::MANIFEST, m.manifest);
    dict.insert(meta::MANIFEST_DIGEST, m.manifest_digest);
    dict.insert(meta::CONFIG, m.config);
    dict.insert(meta::LAYERS, &m.layers);
    dict.insert(meta::DIFF_IDS, &m.diff_ids);
    if let Some(c) = m.encapsulated {
        dict.insert(meta::ENCAPSULATED, c);
    }
    let subject = format!("{} ({})", m.name, m.manifest_digest);
    crate::repo::write_tree_commit(repo, tree, &subject, &dict, m.timestamp)
        .map_err(Error::ostree("writing the image commit"))
}

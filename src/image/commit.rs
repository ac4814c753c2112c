//! Writing the image commit: the merged tree plus the metadata of [`crate::meta`].
//!
//! The commit is a function of the image alone (manifest, config, layers): the same image
//! imported into two repositories, under two names or from two places gives the same
//! checksum, so signatures and static deltas carry over, and a re-import after `rm` + `prune`
//! gives back the very commit that was signed. Where an image came from, and under which
//! name, is kept beside the commit in its detached metadata ([`meta::SOURCES`]), which is not
//! part of the checksum.

use std::collections::BTreeMap;

use ostree::glib::prelude::*;
use ostree::{MutableTree, Repo, gio, glib};

use crate::error::{Error, Result};
use crate::meta;

/// Everything recorded on an image commit besides its tree.
#[derive(Clone, Debug)]
pub struct ImageMeta<'a> {
    /// Local name (kept with the source, not on the commit).
    pub name: &'a str,
    /// Source reference (kept in the detached metadata, not on the commit).
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
    /// For an ostree native container with derived layers: the commit they were applied on.
    pub ostree_base: Option<&'a str>,
    /// For an imported file tree: its [`meta::FILE_TREE`] record (JSON).
    pub file_tree: Option<&'a str>,
    /// How a plain import built the tree (kept in the detached metadata under the name, not
    /// on the commit): [`meta::BUILT`].
    pub built: Option<&'a str>,
}

/// Writes the merged tree and the image commit, and records name and source in its detached
/// metadata; returns the commit checksum.
///
/// # Errors
/// libostree fails.
pub fn write_image_commit(repo: &Repo, tree: &MutableTree, m: &ImageMeta<'_>) -> Result<String> {
    let dict = glib::VariantDict::new(None);
    dict.insert(meta::MANIFEST, m.manifest);
    dict.insert(meta::MANIFEST_DIGEST, m.manifest_digest);
    dict.insert(meta::CONFIG, m.config);
    dict.insert(meta::LAYERS, &m.layers);
    dict.insert(meta::DIFF_IDS, &m.diff_ids);
    if let Some(c) = m.encapsulated {
        dict.insert(meta::ENCAPSULATED, c);
    }
    if let Some(c) = m.ostree_base {
        dict.insert(meta::OSTREE_BASE, c);
    }
    if let Some(r) = m.file_tree {
        dict.insert(meta::FILE_TREE, r);
    }
    // Clients of a collection pull the image commit by the image ref, its record by the
    // record's ref.
    let bound = match m.encapsulated {
        Some(_) => crate::refname::encapsulated_ref(m.name),
        None => crate::refname::image_ref(m.name),
    };
    crate::repo::collection::bind(repo, &dict, &[bound]);
    let subject = format!("image {}", m.manifest_digest);
    let commit = crate::repo::write_tree_commit(repo, tree, &subject, &dict, m.timestamp)
        .map_err(Error::ostree("writing the image commit"))?;
    record_source(repo, &commit, m.name, m.source)?;
    if let Some(b) = m.built {
        set_detached_entry(repo, &commit, meta::BUILT, m.name, b)?;
    }
    Ok(commit)
}

/// The sources recorded for image commit `commit`: image name → source reference.
///
/// # Errors
/// libostree cannot read the detached metadata.
pub fn sources(repo: &Repo, commit: &str) -> Result<BTreeMap<String, String>> {
    detached_map(repo, commit, meta::SOURCES)
}

/// Records that image `name` came from `source`, beside commit `commit`: an entry of
/// [`meta::SOURCES`] in its detached metadata, every other key (signatures) kept.
///
/// # Errors
/// libostree cannot read or write the detached metadata.
pub fn record_source(repo: &Repo, commit: &str, name: &str, source: &str) -> Result<()> {
    set_detached_entry(repo, commit, meta::SOURCES, name, source)
}

/// How plain imports built the tree of image commit `commit`, per image name
/// ([`meta::BUILT`]).
///
/// # Errors
/// libostree cannot read the detached metadata.
pub fn built(repo: &Repo, commit: &str) -> Result<BTreeMap<String, String>> {
    detached_map(repo, commit, meta::BUILT)
}

/// The commits image names pointed at before `commit` (name → previous commit), as
/// recorded by import ([`meta::PREVIOUS`]).
///
/// # Errors
/// libostree cannot read the detached metadata.
pub fn previous(repo: &Repo, commit: &str) -> Result<BTreeMap<String, String>> {
    detached_map(repo, commit, meta::PREVIOUS)
}

/// Records that image `name` pointed at `previous` before `commit` ([`meta::PREVIOUS`]).
///
/// # Errors
/// libostree cannot read or write the detached metadata.
pub fn record_previous(repo: &Repo, commit: &str, name: &str, previous: &str) -> Result<()> {
    set_detached_entry(repo, commit, meta::PREVIOUS, name, previous)
}

fn read_detached(repo: &Repo, commit: &str) -> Result<Option<glib::Variant>> {
    repo.read_commit_detached_metadata(commit, gio::Cancellable::NONE)
        .map_err(Error::ostree(format!(
            "reading detached metadata of {commit}"
        )))
}

/// The `a{ss}` under `key` in the detached metadata of `commit`.
fn detached_map(repo: &Repo, commit: &str, key: &str) -> Result<BTreeMap<String, String>> {
    Ok(read_detached(repo, commit)?
        .map(|v| glib::VariantDict::new(Some(&v)))
        .and_then(|d| d.lookup::<BTreeMap<String, String>>(key).ok().flatten())
        .unwrap_or_default())
}

/// Sets `name` → `value` in the `a{ss}` under `key` of the detached metadata of `commit`,
/// every other entry and key (signatures) kept; writes nothing when it is there already.
fn set_detached_entry(repo: &Repo, commit: &str, key: &str, name: &str, value: &str) -> Result<()> {
    let detached = read_detached(repo, commit)?;
    let dict = glib::VariantDict::new(detached.as_ref());
    let mut all: BTreeMap<String, String> = dict.lookup(key).ok().flatten().unwrap_or_default();
    if all.get(name).map(String::as_str) == Some(value) {
        return Ok(());
    }
    all.insert(name.to_string(), value.to_string());
    dict.insert_value(key, &all.to_variant());
    repo.write_commit_detached_metadata(commit, Some(&dict.end()), gio::Cancellable::NONE)
        .map_err(Error::ostree(format!(
            "writing detached metadata of {commit}"
        )))
}

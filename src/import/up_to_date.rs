//! "Up to date": an import of what an image name already is reads and writes nothing
//! ([`super::unchanged`]). That is right only when the stored image is the very tree this
//! import would build: the same manifest and config, read the same way (format, rules for
//! derived layers, every layer merged), from the same layer commits under the same layer
//! and merge rules. A plain import records how it built the tree ([`record`]) beside the image commit,
//! under the image's name ([`meta::BUILT`], detached metadata: not part of the checksum), and
//! the shortcut compares that record. An image imported with a layer selection, per-dir
//! layers or per-type rules records none, nor does one imported by an ocitree that kept no
//! such record: a plain import of the same manifest then builds the tree again (every layer
//! is reused, and the same tree gives the same commit).
//!
//! [`meta::BUILT`]: crate::meta::BUILT

use ostree::Repo;

use crate::error::Result;
use crate::image::{ImageFormat, ImageInfo, refs};
use crate::import::ImportOptions;
use crate::refname;
use crate::select::LayersMode;

/// Whether `opts` read every layer into one merged tree with no per-type rules: the only
/// imports whose tree [`record`] describes.
fn plain(opts: &ImportOptions) -> bool {
    opts.layers.is_all() && opts.layers_mode == LayersMode::Merge && opts.layer_rules.is_empty()
}

/// How a plain import reading the image as `format` builds its tree from `layer_commits`
/// (the layer commits, base first); `None` when `opts` is no plain import.
pub fn record(format: ImageFormat, opts: &ImportOptions, layer_commits: &[&str]) -> Option<String> {
    plain(opts).then(|| {
        format!(
            "rules={} merge={} format={format} derived={:?} layers={}",
            crate::layer::rules::VERSION,
            crate::merge::VERSION,
            opts.derived_rules,
            layer_commits.join(",")
        )
    })
}

/// The commit of image `name` if it already is this manifest and config, with its tree built
/// as `record` says (see the module documentation): an import would change nothing.
///
/// # Errors
/// libostree fails.
pub fn up_to_date(
    repo: &Repo,
    name: &str,
    manifest_digest: &str,
    config: &str,
    record: &str,
) -> Result<Option<String>> {
    let Some(commit) = refs::resolve(repo, &refname::image_ref(name))? else {
        return Ok(None);
    };
    let Ok(info) = ImageInfo::load_commit(repo, name, &commit) else {
        return Ok(None);
    };
    if info.manifest_digest != manifest_digest || info.config != config {
        return Ok(None);
    }
    let holder = info.record.as_deref().unwrap_or(&commit);
    let built = crate::image::commit::built(repo, holder)?;
    Ok((built.get(name).map(String::as_str) == Some(record)).then_some(commit))
}

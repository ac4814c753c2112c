//! Export and encapsulate to a registry: the image is written to an OCI layout in the
//! repository's tmp directory ([`export_image`] rebuilds and checks every layer;
//! [`encapsulate()`] writes a commit as an image), which [`crate::registry::push_layout`] then
//! pushes.

use ostree::Repo;

use crate::error::Result;
use crate::export::{
    EncapsulateOptions, EncapsulateReport, ExportOptions, ExportReport, encapsulate, export_image,
};
use crate::image::ImageInfo;
use crate::registry::{ImageReference, PushReport, push_layout};

/// Exports image `name` and pushes it to `dest`. Blobs go through a layout in the
/// repository's tmp directory, removed afterwards. When the image was pulled from another
/// repository of the same registry, its blobs are mounted from there where they are unchanged.
///
/// # Errors
/// As [`export_image`] and [`push_layout`].
pub fn push_image(
    repo: &Repo,
    name: &str,
    dest: &ImageReference,
    opts: &ExportOptions,
) -> Result<(ExportReport, PushReport)> {
    let info = ImageInfo::load(repo, name)?;
    let tmp = crate::repo::tmp_dir(repo);
    let (staging, layout) = crate::export::staging::scratch_layout(&tmp, "ocitree-push-")?;
    let export = export_image(repo, name, &layout, opts)?;
    let mount_from = info
        .source
        .strip_prefix("docker://")
        .and_then(|s| ImageReference::parse(s).ok())
        .filter(|src| src.registry == dest.registry)
        .map(|src| src.repository);
    let mut report = push_layout(staging.path(), dest, &opts.registry, mount_from.as_deref())?;
    if report.manifest_digest.is_empty() {
        report.manifest_digest = export.manifest_digest.clone();
    }
    Ok((export, report))
}

/// Encapsulates commit `rev` ([`encapsulate()`]) and pushes it to `dest` with `registry`'s
/// options. Blobs go through a layout in the repository's tmp directory, removed afterwards.
///
/// # Errors
/// As [`encapsulate()`] and [`push_layout`].
pub fn push_encapsulated(
    repo: &Repo,
    rev: &str,
    dest: &ImageReference,
    opts: &EncapsulateOptions,
    registry: &crate::registry::RegistryOptions,
) -> Result<(EncapsulateReport, PushReport)> {
    let tmp = crate::repo::tmp_dir(repo);
    let (staging, layout) = crate::export::staging::scratch_layout(&tmp, "ocitree-push-")?;
    let written = encapsulate(repo, rev, &layout, opts)?;
    let mut report = push_layout(staging.path(), dest, registry, None)?;
    if report.manifest_digest.is_empty() {
        report.manifest_digest = written.manifest_digest.clone();
    }
    Ok((written, report))
}

//! Export of several imported images as one multi-platform image index (`export --index-of`):
//! each image is exported as [`export_image`] does (into one staging layout), its platform
//! read from its config (`os`, `architecture`, `variant`), and an OCI index lists them in the
//! order given. To a registry, each manifest is pushed by digest, then the index under the
//! destination's tag ([`crate::registry::push_index`]); to `oci:DIR[:TAG]`, a new layout is
//! written whose `index.json` names the index (tagged TAG).

use std::path::{Path, PathBuf};

use ostree::Repo;
use serde_json::{Value, json};

use crate::digest::Digest;
use crate::error::{Error, Result};
use crate::export::{ExportOptions, export_image};
use crate::registry::{PushReport, push_index};
use crate::source::{Selector, SourceRef};
use crate::spec::{ANNOTATION_REF_NAME, MEDIA_TYPE_INDEX, Platform};

/// What an index export did.
#[derive(Clone, Debug, Default)]
#[non_exhaustive]
pub struct IndexReport {
    /// The digest of the index written or pushed.
    pub index_digest: String,
    /// Each image: its name, platform and manifest digest (as exported; a pushed docker
    /// manifest is converted to OCI and gets another digest, see `pushed`).
    pub images: Vec<(String, Platform, String)>,
    /// What the push did, for a registry destination.
    pub pushed: Option<PushReport>,
}

fn read_json(layout: &Path, digest: &Digest, image: &str) -> Result<Value> {
    let p = layout
        .join("blobs")
        .join(digest.algorithm())
        .join(digest.encoded());
    let bytes = std::fs::read(&p).map_err(Error::io(format!("reading {}", p.display())))?;
    serde_json::from_slice(&bytes).map_err(|e| Error::InvalidImage {
        image: image.to_string(),
        reason: format!("{digest}: {e}"),
    })
}

/// The platform an exported image's config names.
fn platform_of(layout: &Path, manifest: &Digest, name: &str) -> Result<Platform> {
    let m = read_json(layout, manifest, name)?;
    let config = Digest::parse(m["config"]["digest"].as_str().unwrap_or_default())?;
    let c = read_json(layout, &config, name)?;
    let field = |k: &str| c[k].as_str().filter(|s| !s.is_empty()).map(String::from);
    match (field("os"), field("architecture")) {
        (Some(os), Some(architecture)) => Ok(Platform {
            os,
            architecture,
            variant: field("variant"),
        }),
        _ => Err(Error::InvalidImage {
            image: name.to_string(),
            reason: "its config names no os and architecture: it cannot be an index entry".into(),
        }),
    }
}

/// Exports the images `names` as one index to `dest` (`docker://…` or a new `oci:DIR[:TAG]`).
///
/// # Errors
/// No name, a name given twice, two images of one platform, an image without a platform, a
/// destination that is not a registry or a new OCI layout, and what [`export_image`] and
/// [`push_index`] return.
pub fn export_index(
    repo: &Repo,
    names: &[String],
    dest: &SourceRef,
    opts: &ExportOptions,
) -> Result<IndexReport> {
    let bad = |reason: String| Error::InvalidReference {
        reference: dest.to_string(),
        reason,
    };
    if names.is_empty() {
        return Err(bad("--index-of needs at least one image".into()));
    }
    let (parent, oci): (PathBuf, Option<(&Path, Option<&str>)>) = match dest {
        SourceRef::Registry(_) => (crate::repo::tmp_dir(repo), None),
        SourceRef::OciDir { path, selector } => {
            if path.exists() {
                return Err(bad(
                    "an index is written as a new layout: the directory exists".into(),
                ));
            }
            let tag = match selector {
                Selector::Default => None,
                Selector::Tag(t) => Some(t.as_str()),
                Selector::Digest(_) => return Err(bad("a layout is tagged, not digested".into())),
            };
            let parent = path
                .parent()
                .filter(|p| !p.as_os_str().is_empty())
                .unwrap_or(Path::new("."));
            (parent.to_path_buf(), Some((path.as_path(), tag)))
        }
        _ => {
            return Err(bad(
                "an index goes to docker://… or a new oci:DIR[:TAG]".into()
            ));
        }
    };
    let (staging, layout) = crate::export::staging::scratch_layout(&parent, ".ocitree-index-")?;
    let mut report = IndexReport::default();
    let mut manifests: Vec<(Digest, Platform)> = Vec::new();
    for name in names {
        if report.images.iter().any(|(n, _, _)| n == name) {
            return Err(bad(format!("image {name:?} given twice")));
        }
        let exported = export_image(repo, name, &layout, opts)?;
        let digest = Digest::parse(&exported.manifest_digest)?;
        let platform = platform_of(staging.path(), &digest, name)?;
        if let Some((other, _, _)) = report.images.iter().find(|(_, p, _)| *p == platform) {
            return Err(bad(format!(
                "{name:?} and {other:?} are both for platform {platform}"
            )));
        }
        report
            .images
            .push((name.clone(), platform.clone(), exported.manifest_digest));
        manifests.push((digest, platform));
    }
    if let SourceRef::Registry(r) = dest {
        let pushed = push_index(staging.path(), &manifests, r, &opts.registry)?;
        report.index_digest = pushed.manifest_digest.clone();
        report.pushed = Some(pushed);
        return Ok(report);
    }
    let (path, tag) = oci.expect("a registry or a layout, checked above");
    let (index_digest, index_size) = write_layout_index(staging.path(), &manifests)?;
    report.index_digest = index_digest;
    let index = json!({
        "schemaVersion": 2,
        "mediaType": MEDIA_TYPE_INDEX,
        "manifests": [{
            "mediaType": MEDIA_TYPE_INDEX,
            "digest": report.index_digest,
            "size": index_size,
            "annotations": tag.map(|t| json!({ ANNOTATION_REF_NAME: t })).unwrap_or(json!({})),
        }],
    });
    let index_path = staging.path().join("index.json");
    std::fs::write(
        &index_path,
        serde_json::to_vec(&index).expect("JSON serializes"),
    )
    .map_err(Error::io(format!("writing {}", index_path.display())))?;
    let kept = staging.keep();
    std::fs::rename(&kept, path).map_err(Error::io(format!("writing {}", path.display())))?;
    Ok(report)
}

/// Writes the index of `manifests` (descriptors as the staging `index.json` has them, plus
/// their platforms) as a blob of the layout; returns its digest and size.
fn write_layout_index(layout: &Path, manifests: &[(Digest, Platform)]) -> Result<(String, usize)> {
    let staged = read_index_json(layout)?;
    let mut entries = Vec::new();
    for (digest, platform) in manifests {
        let desc = staged
            .iter()
            .find(|d| d["digest"].as_str() == Some(digest.as_str()))
            .ok_or_else(|| Error::InvalidImage {
                image: format!("oci:{}", layout.display()),
                reason: format!("{digest} missing from the staged index.json"),
            })?;
        let mut p = json!({"architecture": platform.architecture, "os": platform.os});
        if let Some(v) = &platform.variant {
            p["variant"] = json!(v);
        }
        entries.push(json!({
            "mediaType": desc["mediaType"],
            "digest": digest.as_str(),
            "size": desc["size"],
            "platform": p,
        }));
    }
    let bytes = serde_json::to_vec(&json!({
        "schemaVersion": 2,
        "mediaType": MEDIA_TYPE_INDEX,
        "manifests": entries,
    }))
    .expect("JSON values serialize");
    let digest = Digest::sha256_of(&bytes);
    let p = layout.join("blobs/sha256").join(digest.encoded());
    std::fs::write(&p, &bytes).map_err(Error::io(format!("writing {}", p.display())))?;
    Ok((digest.to_string(), bytes.len()))
}

fn read_index_json(layout: &Path) -> Result<Vec<Value>> {
    let p = layout.join("index.json");
    let bytes = std::fs::read(&p).map_err(Error::io(format!("reading {}", p.display())))?;
    let v: Value = serde_json::from_slice(&bytes).map_err(|e| Error::InvalidImage {
        image: format!("oci:{}", layout.display()),
        reason: format!("index.json: {e}"),
    })?;
    Ok(v["manifests"].as_array().cloned().unwrap_or_default())
}

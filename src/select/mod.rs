//! Which layers of a manifest to apply, and how: the artifact side of an import (Flux's
//! `layerSelector`, ORAS artifacts).
//!
//! - Layers are picked by media type and/or index ([`LayerSelection`]); by default all.
//! - Each kept layer is a filesystem tar or one file ([`rules`]): the way its producer (ORAS,
//!   Flux, Timoni, Helm) means it, or as `--extract` and `--copy` say. A file is named by its
//!   `org.opencontainers.image.title` annotation, a relative path ([`title`]), else by its
//!   digest plus an extension from the media type ([`extension`]).
//! - [`LayersMode::Merge`] applies the layers onto one tree (the OCI image semantics);
//!   [`LayersMode::PerDir`] puts each layer in its own directory named by its digest.

pub mod rules;
pub mod title;

use crate::digest::Digest;
use crate::error::{Error, Result};
use crate::spec::Descriptor;

pub use rules::{LayerRules, Treatment};

/// The annotation that names an artifact layer's file.
pub const ANNOTATION_TITLE: &str = "org.opencontainers.image.title";

/// How the selected layers form the tree.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum LayersMode {
    /// One tree: each layer applied onto the ones before (whiteouts and all).
    #[default]
    Merge,
    /// One directory per layer, named `<alg>-<hex>` after the layer's digest.
    PerDir,
}

impl LayersMode {
    /// Parses `merge` or `per-dir`.
    ///
    /// # Errors
    /// Anything else.
    pub fn parse(s: &str) -> Result<Self> {
        match s {
            "merge" => Ok(LayersMode::Merge),
            "per-dir" => Ok(LayersMode::PerDir),
            other => Err(Error::Invalid {
                what: format!("--layers {other}"),
                reason: "--layers takes merge or per-dir".into(),
            }),
        }
    }
}

/// Which layers to apply.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct LayerSelection {
    /// Keep layers with one of these media types (all when empty).
    pub media_types: Vec<String>,
    /// Keep layers at these 0-based positions (all when empty).
    pub indexes: Vec<usize>,
}

impl LayerSelection {
    /// Whether the selection keeps every layer.
    pub fn is_all(&self) -> bool {
        self.media_types.is_empty() && self.indexes.is_empty()
    }

    /// The positions of the layers of `layers` it keeps, in order.
    ///
    /// # Errors
    /// An index past the end, or no layer kept: the error lists the layers there are (with
    /// their titles).
    pub fn apply(&self, image: &str, layers: &[Descriptor]) -> Result<Vec<usize>> {
        let listing = || {
            layers
                .iter()
                .enumerate()
                .map(|(i, d)| match d.annotations.get(ANNOTATION_TITLE) {
                    Some(t) => format!(
                        "  {i}: {} {} {:?}",
                        d.media_type,
                        d.digest_str,
                        crate::error::printable(t)
                    ),
                    None => format!("  {i}: {} {}", d.media_type, d.digest_str),
                })
                .collect::<Vec<_>>()
                .join("\n")
        };
        if let Some(&i) = self.indexes.iter().find(|&&i| i >= layers.len()) {
            return Err(Error::InvalidImage {
                image: image.into(),
                reason: format!(
                    "--layer-index {i}: the manifest has {} layers:\n{}",
                    layers.len(),
                    listing()
                ),
            });
        }
        let kept: Vec<usize> = (0..layers.len())
            .filter(|i| self.indexes.is_empty() || self.indexes.contains(i))
            .filter(|&i| {
                self.media_types.is_empty() || self.media_types.contains(&layers[i].media_type)
            })
            .collect();
        if kept.is_empty() && !layers.is_empty() {
            return Err(Error::InvalidImage {
                image: image.into(),
                reason: format!(
                    "no layer matches the selection (media types {:?}, indexes {:?}); layers:\n{}",
                    self.media_types,
                    self.indexes,
                    listing()
                ),
            });
        }
        Ok(kept)
    }
}

/// Whether a layer media type is a filesystem changeset (a tar, maybe compressed), as opposed
/// to an artifact blob. An empty media type counts as a tar (old docker manifests).
pub fn is_tar_layer(media_type: &str) -> bool {
    media_type.is_empty()
        || media_type.starts_with("application/vnd.oci.image.layer.")
        || media_type.starts_with("application/vnd.docker.image.rootfs.")
}

/// A file name extension for an artifact media type (`""` when none fits).
pub fn extension(media_type: &str) -> &'static str {
    let mt = media_type.split(';').next().unwrap_or_default().trim();
    let ends = |s: &str| mt.ends_with(s);
    if mt == rules::HELM_CHART {
        ".tgz"
    } else if ends(".prov") {
        ".prov"
    } else if ends("tar+gzip") || ends(".tar.gzip") || ends("tar.gz") {
        ".tar.gz"
    } else if ends("tar+zstd") || ends(".tar.zstd") {
        ".tar.zst"
    } else if ends("+tar") || ends(".tar") || ends("/x-tar") {
        ".tar"
    } else if ends("json") {
        ".json"
    } else if ends("yaml") || ends("yml") {
        ".yaml"
    } else if ends("gzip") {
        ".gz"
    } else if ends("zstd") {
        ".zst"
    } else if mt.starts_with("text/") {
        ".txt"
    } else if ends("wasm") {
        ".wasm"
    } else {
        ""
    }
}

/// The directory a layer gets under [`LayersMode::PerDir`]: `<alg>-<hex>`.
pub fn dir_name(digest: &Digest) -> String {
    format!("{}-{}", digest.algorithm(), digest.encoded())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn desc(mt: &str, title: Option<&str>) -> Descriptor {
        let mut v = serde_json::json!({
            "mediaType": mt,
            "digest": "sha256:e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855",
            "size": 0
        });
        if let Some(t) = title {
            v["annotations"] = serde_json::json!({ ANNOTATION_TITLE: t });
        }
        serde_json::from_value(v).unwrap()
    }

    #[test]
    fn extensions() {
        assert_eq!(extension(rules::HELM_CHART), ".tgz");
        assert_eq!(extension(rules::HELM_PROVENANCE), ".prov");
        assert_eq!(extension(rules::FLUX_CONTENT), ".tar.gz");
        assert_eq!(extension("application/vnd.example+json"), ".json");
        assert_eq!(extension("application/octet-stream"), "");
    }

    #[test]
    fn tar_or_artifact() {
        assert!(is_tar_layer("application/vnd.oci.image.layer.v1.tar+gzip"));
        assert!(is_tar_layer(
            "application/vnd.docker.image.rootfs.diff.tar.gzip"
        ));
        assert!(is_tar_layer(""));
        assert!(!is_tar_layer(
            "application/vnd.cncf.helm.chart.content.v1.tar+gzip"
        ));
        assert!(!is_tar_layer("application/json"));
    }

    #[test]
    fn selects_by_type_and_index() {
        let layers = vec![
            desc("application/vnd.oci.image.layer.v1.tar+gzip", None),
            desc("application/json", None),
            desc("application/json", None),
        ];
        let sel = |m: &[&str], i: &[usize]| LayerSelection {
            media_types: m.iter().map(|s| s.to_string()).collect(),
            indexes: i.to_vec(),
        };
        assert_eq!(sel(&[], &[]).apply("i", &layers).unwrap(), [0, 1, 2]);
        assert_eq!(
            sel(&["application/json"], &[]).apply("i", &layers).unwrap(),
            [1, 2]
        );
        assert_eq!(
            sel(&["application/json"], &[2])
                .apply("i", &layers)
                .unwrap(),
            [2]
        );
        let e = sel(&[], &[3]).apply("i", &layers).unwrap_err().to_string();
        assert!(
            e.contains("3 layers") && e.contains("2: application/json"),
            "{e}"
        );
        assert!(sel(&["text/plain"], &[]).apply("i", &layers).is_err());
    }
}

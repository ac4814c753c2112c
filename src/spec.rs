//! The parts of the OCI image-spec JSON documents ocitree reads: index, manifest, config.
//!
//! Deliberately lenient where the wild is (docker v2 schema 2 manifests and manifest lists use
//! the same field names with other media types; unknown fields are ignored) and strict where it
//! matters (every digest is validated with [`Digest::parse`] before use).

use std::collections::BTreeMap;

use serde::Deserialize;

use crate::digest::Digest;

/// Default for [`metadata_limit`]: 8 MiB (containerd takes 4 MiB manifests).
pub const METADATA_LIMIT: u64 = 8 << 20;
static LIMIT: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(METADATA_LIMIT);

/// Largest manifest, index or config accepted (they are read into memory): [`METADATA_LIMIT`]
/// unless [`set_metadata_limit`] changed it (the CLI's `--max-metadata-size`).
pub fn metadata_limit() -> u64 {
    LIMIT.load(std::sync::atomic::Ordering::Relaxed)
}

/// Sets [`metadata_limit`] for the whole process.
pub fn set_metadata_limit(bytes: u64) {
    LIMIT.store(bytes, std::sync::atomic::Ordering::Relaxed);
}

/// Checks that a document an import stores (manifest, config, a file tree's root) reads back
/// as the commands reading stored documents read it (`inspect`, `export`: as a
/// `serde_json::Value`, which refuses nesting over 128 levels, or a number out of range, that
/// the typed reading of an import skips over). An import refuses what they could not read.
///
/// # Errors
/// [`crate::error::Error::InvalidImage`] naming `image`, the document (`what`) and why.
pub fn check_readable_back(image: &str, what: &str, bytes: &[u8]) -> crate::error::Result<()> {
    serde_json::from_slice::<serde_json::Value>(bytes)
        .map(drop)
        .map_err(|e| crate::error::Error::InvalidImage {
            image: image.to_string(),
            reason: format!(
                "{what}: {e}: refusing to store a document that `inspect` and `export` could \
                 not read back (they read JSON at most 128 levels deep)"
            ),
        })
}

/// OCI image index media type.
pub const MEDIA_TYPE_INDEX: &str = "application/vnd.oci.image.index.v1+json";
/// OCI image manifest media type.
pub const MEDIA_TYPE_MANIFEST: &str = "application/vnd.oci.image.manifest.v1+json";
/// Docker manifest list media type.
pub const MEDIA_TYPE_DOCKER_LIST: &str =
    "application/vnd.docker.distribution.manifest.list.v2+json";
/// Docker v2 schema 2 manifest media type.
pub const MEDIA_TYPE_DOCKER_MANIFEST: &str = "application/vnd.docker.distribution.manifest.v2+json";
/// The annotation naming a manifest's tag in an OCI layout's index.
pub const ANNOTATION_REF_NAME: &str = "org.opencontainers.image.ref.name";

/// A content descriptor.
#[derive(Clone, Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Descriptor {
    /// Media type of the referenced content.
    #[serde(default)]
    pub media_type: String,
    /// Digest string (validate with [`Descriptor::digest`]).
    #[serde(rename = "digest")]
    pub digest_str: String,
    /// Size in bytes.
    pub size: u64,
    /// Platform, for manifests in an index.
    #[serde(default)]
    pub platform: Option<Platform>,
    /// Annotations.
    #[serde(default)]
    pub annotations: BTreeMap<String, String>,
    /// Artifact type.
    #[serde(default)]
    pub artifact_type: Option<String>,
}

impl Descriptor {
    /// The validated digest.
    ///
    /// # Errors
    /// [`crate::error::Error::InvalidDigest`].
    pub fn digest(&self) -> crate::error::Result<Digest> {
        Digest::parse(&self.digest_str)
    }

    /// Whether this descriptor points at an index (OCI or docker manifest list).
    pub fn is_index(&self) -> bool {
        self.media_type == MEDIA_TYPE_INDEX || self.media_type == MEDIA_TYPE_DOCKER_LIST
    }

    /// The `org.opencontainers.image.ref.name` annotation.
    pub fn ref_name(&self) -> Option<&str> {
        self.annotations
            .get(ANNOTATION_REF_NAME)
            .map(String::as_str)
    }
}

/// A platform (`os/architecture[/variant]`).
#[derive(Clone, Debug, Default, Deserialize, PartialEq, Eq)]
pub struct Platform {
    /// Operating system (`linux`).
    #[serde(default)]
    pub os: String,
    /// CPU architecture in Go's names (`amd64`, `arm64`).
    #[serde(default)]
    pub architecture: String,
    /// CPU variant (`v7`, `v8`).
    #[serde(default)]
    pub variant: Option<String>,
}

impl Platform {
    /// Parses `os/arch[/variant]`.
    ///
    /// # Errors
    /// [`crate::error::Error::InvalidPlatform`] for anything else.
    pub fn parse(s: &str) -> crate::error::Result<Platform> {
        let parts: Vec<&str> = s.split('/').collect();
        match parts.as_slice() {
            [os, arch] | [os, arch, _] if !os.is_empty() && !arch.is_empty() => Ok(Platform {
                os: os.to_string(),
                architecture: arch.to_string(),
                variant: parts
                    .get(2)
                    .filter(|v| !v.is_empty())
                    .map(|v| v.to_string()),
            }),
            _ => Err(crate::error::Error::InvalidPlatform(s.to_string())),
        }
    }

    /// The platform this program runs on.
    pub fn host() -> Platform {
        let arch = match std::env::consts::ARCH {
            "x86_64" => "amd64",
            "aarch64" => "arm64",
            "x86" => "386",
            "powerpc64" => "ppc64le",
            other => other,
        };
        Platform {
            os: std::env::consts::OS.to_string(),
            architecture: arch.to_string(),
            variant: None,
        }
    }

    /// Whether an image for `self` satisfies a request for `wanted`: same os and architecture,
    /// and the same variant when `wanted` names one (arm64's default variant is `v8`).
    pub fn satisfies(&self, wanted: &Platform) -> bool {
        let norm = |p: &Platform| match (p.architecture.as_str(), p.variant.as_deref()) {
            ("arm64", None) => Some("v8".to_string()),
            _ => p.variant.clone(),
        };
        self.os == wanted.os
            && self.architecture == wanted.architecture
            && (wanted.variant.is_none() || norm(self) == norm(wanted))
    }
}

impl std::fmt::Display for Platform {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}/{}", self.os, self.architecture)?;
        if let Some(v) = &self.variant {
            write!(f, "/{v}")?;
        }
        Ok(())
    }
}

/// An image index (or docker manifest list).
#[derive(Clone, Debug, Deserialize)]
pub struct Index {
    /// The manifests (or nested indexes).
    #[serde(default)]
    pub manifests: Vec<Descriptor>,
}

/// Config media types of container images (anything else makes the manifest an artifact).
pub const IMAGE_CONFIG_TYPES: [&str; 2] = [
    "application/vnd.oci.image.config.v1+json",
    "application/vnd.docker.container.image.v1+json",
];

/// An image manifest (OCI or docker v2 schema 2).
#[derive(Clone, Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Manifest {
    /// Must be 2.
    pub schema_version: u32,
    /// Media type, when the manifest states it.
    #[serde(default)]
    pub media_type: Option<String>,
    /// The artifact type (image-spec 1.1), when the manifest states it.
    #[serde(default)]
    pub artifact_type: Option<String>,
    /// The config blob.
    pub config: Descriptor,
    /// The layers, base first.
    #[serde(default)]
    pub layers: Vec<Descriptor>,
    /// Present when this document is an index rather than a manifest.
    #[serde(default)]
    pub manifests: Option<Vec<Descriptor>>,
}

impl Manifest {
    /// Whether this is a container image: its config is an image config
    /// ([`IMAGE_CONFIG_TYPES`]; docker v2 schema 2 and OCI manifests that state no config
    /// media type count too). Its layers must then be filesystem tars and its config must list
    /// their diff_ids.
    pub fn is_image(&self) -> bool {
        let mt = self.config.media_type.as_str();
        mt.is_empty() || IMAGE_CONFIG_TYPES.contains(&mt)
    }

    /// The artifact type: `artifactType`, else the config media type when that is not a
    /// container image config (image-spec 1.1); `None` for a container image.
    pub fn artifact_type(&self) -> Option<&str> {
        self.artifact_type.as_deref().or_else(|| {
            let mt = self.config.media_type.as_str();
            (!mt.is_empty() && !IMAGE_CONFIG_TYPES.contains(&mt)).then_some(mt)
        })
    }
}

/// The parts of an image config ocitree needs.
#[derive(Clone, Debug, Deserialize)]
pub struct Config {
    /// RFC 3339 creation time.
    #[serde(default)]
    pub created: Option<String>,
    /// The diff_ids (absent from artifact configs such as `{}`).
    #[serde(default)]
    pub rootfs: RootFs,
    /// The execution parameters, labels included.
    #[serde(default)]
    pub config: Option<ExecConfig>,
}

/// The `config` member of an image config (only what ocitree reads).
#[derive(Clone, Debug, Default, Deserialize)]
pub struct ExecConfig {
    /// Labels (`Labels`).
    #[serde(rename = "Labels", default)]
    pub labels: Option<BTreeMap<String, String>>,
}

impl Config {
    /// The config's labels (empty when it has none).
    pub fn labels(&self) -> BTreeMap<String, String> {
        self.config
            .as_ref()
            .and_then(|c| c.labels.clone())
            .unwrap_or_default()
    }
}

/// `rootfs` of an image config.
#[derive(Clone, Debug, Default, Deserialize)]
pub struct RootFs {
    /// `type`: must be `layers` in an image config.
    #[serde(rename = "type", default)]
    pub kind: Option<String>,
    /// One diff_id per layer, base first.
    #[serde(default)]
    pub diff_ids: Vec<String>,
}

impl RootFs {
    /// Checks `rootfs` against a manifest of `layers` layers: `type` is `layers`, one diff_id
    /// per layer, each a valid digest. `image`: the config is an image config; otherwise (an
    /// artifact's config, often `{}`) a config without diff_ids passes, and one with diff_ids
    /// need not state its type.
    ///
    /// # Errors
    /// What is wrong, as a sentence for [`crate::error::Error::InvalidImage`].
    pub fn check(&self, layers: usize, image: bool) -> Result<(), String> {
        if !image && self.diff_ids.is_empty() {
            return Ok(());
        }
        match self.kind.as_deref() {
            Some("layers") => {}
            None if !image => {}
            Some(other) => {
                return Err(format!(
                    "config rootfs.type is {other:?}; the only type is \"layers\""
                ));
            }
            None => return Err("config has no rootfs.type (must be \"layers\")".into()),
        }
        if self.diff_ids.len() != layers {
            return Err(format!(
                "manifest lists {layers} layers but the config has {} diff_ids",
                self.diff_ids.len()
            ));
        }
        if let Some((i, bad)) = self
            .diff_ids
            .iter()
            .enumerate()
            .find(|(_, d)| Digest::parse(d).is_err())
        {
            return Err(format!(
                "config rootfs.diff_ids[{i}] {bad:?} is not a digest (algorithm:hex)"
            ));
        }
        Ok(())
    }
}

/// Converts an RFC 3339 timestamp to seconds since the epoch (`None` if it does not parse).
pub fn parse_rfc3339(s: &str) -> Option<u64> {
    // YYYY-MM-DDTHH:MM:SS[.frac](Z|±HH:MM)
    let b = s.as_bytes();
    if b.len() < 20 || b[4] != b'-' || b[7] != b'-' || !matches!(b[10], b'T' | b't' | b' ') {
        return None;
    }
    let num = |r: std::ops::Range<usize>| s.get(r)?.parse::<i64>().ok();
    let (y, mo, d) = (num(0..4)?, num(5..7)?, num(8..10)?);
    let (h, mi, sec) = (num(11..13)?, num(14..16)?, num(17..19)?);
    let mut rest = &s[19..];
    if let Some(r) = rest.strip_prefix('.') {
        rest = r.trim_start_matches(|c: char| c.is_ascii_digit());
    }
    let offset = match rest {
        "Z" | "z" => 0,
        _ if rest.len() == 6 => {
            let sign = match &rest[..1] {
                "+" => 1,
                "-" => -1,
                _ => return None,
            };
            sign * (rest[1..3].parse::<i64>().ok()? * 3600 + rest[4..6].parse::<i64>().ok()? * 60)
        }
        _ => return None,
    };
    // days from civil (Howard Hinnant's algorithm)
    let y = if mo <= 2 { y - 1 } else { y };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let doy = (153 * (mo + if mo > 2 { -3 } else { 9 }) + 2) / 5 + d - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    let days = era * 146097 + doe - 719468;
    u64::try_from(days * 86400 + h * 3600 + mi * 60 + sec - offset).ok()
}

/// Formats seconds since the epoch as RFC 3339 in UTC (`2023-11-14T22:13:20Z`), the inverse of
/// [`parse_rfc3339`].
///
/// # Examples
/// ```
/// assert_eq!(ocitree::spec::format_rfc3339(1_700_000_000), "2023-11-14T22:13:20Z");
/// ```
pub fn format_rfc3339(secs: u64) -> String {
    // civil from days (Howard Hinnant's algorithm)
    let days = (secs / 86400) as i64;
    let rem = secs % 86400;
    let z = days + 719468;
    let era = z.div_euclid(146097);
    let doe = z - era * 146097;
    let yoe = (doe - doe / 1460 + doe / 36524 - doe / 146096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    let y = yoe + era * 400 + i64::from(m <= 2);
    format!(
        "{y:04}-{m:02}-{d:02}T{:02}:{:02}:{:02}Z",
        rem / 3600,
        rem / 60 % 60,
        rem % 60
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rfc3339() {
        assert_eq!(parse_rfc3339("1970-01-01T00:00:00Z"), Some(0));
        assert_eq!(parse_rfc3339("2023-11-14T22:13:20Z"), Some(1_700_000_000));
        assert_eq!(
            parse_rfc3339("2023-11-14T23:13:20.123456789+01:00"),
            Some(1_700_000_000)
        );
        assert_eq!(parse_rfc3339("garbage"), None);
        for t in [0, 1, 951_782_400, 1_700_000_000, 4_102_444_799] {
            assert_eq!(parse_rfc3339(&format_rfc3339(t)), Some(t), "{t}");
        }
        assert_eq!(format_rfc3339(951_782_400), "2000-02-29T00:00:00Z");
    }

    #[test]
    fn rootfs_checks() {
        let id = "sha256:e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855";
        let r = |kind: Option<&str>, ids: &[&str]| RootFs {
            kind: kind.map(String::from),
            diff_ids: ids.iter().map(|s| s.to_string()).collect(),
        };
        assert!(r(Some("layers"), &[id]).check(1, true).is_ok());
        assert!(r(None, &[]).check(2, false).is_ok(), "artifact config");
        let e = r(Some("tarballs"), &[id]).check(1, true).unwrap_err();
        assert!(e.contains("\"tarballs\""), "{e}");
        assert!(
            r(None, &[id])
                .check(1, true)
                .unwrap_err()
                .contains("rootfs.type")
        );
        let e = r(Some("layers"), &[id, id]).check(1, true).unwrap_err();
        assert!(e.contains("1 layers") && e.contains("2 diff_ids"), "{e}");
        let e = r(Some("layers"), &["nope"]).check(1, true).unwrap_err();
        assert!(e.contains("diff_ids[0] \"nope\""), "{e}");
        assert!(r(Some("layers"), &["nope"]).check(1, false).is_err());
    }

    #[test]
    fn platforms() {
        let want = Platform::parse("linux/arm64/v8").unwrap();
        assert!(Platform::parse("linux/arm64").unwrap().satisfies(&want));
        assert!(!Platform::parse("linux/arm/v7").unwrap().satisfies(&want));
        assert!(
            Platform::parse("linux/arm/v7")
                .unwrap()
                .satisfies(&Platform::parse("linux/arm").unwrap())
        );
        assert!(Platform::parse("linux").is_err());
    }
}

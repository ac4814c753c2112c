//! What each layer of an artifact becomes, the way its producer means it: a filesystem tar
//! applied to the tree, or one file holding the blob byte for byte.
//!
//! | layer                                                        | becomes                                   |
//! |--------------------------------------------------------------|-------------------------------------------|
//! | media type given to `--copy TYPE[=NAME]`                     | the file NAME (else title, else digest)   |
//! | media type given to `--extract TYPE`                         | a tree (it must be a tar)                 |
//! | container image (image config), tar media type               | a tree (it must be a tar)                 |
//! | container image, other media type                            | an error, unless selected by type         |
//! | annotation `io.deis.oras.content.unpack: "true"`             | a tree (it must be a tar)                 |
//! | Flux or Timoni content (`…flux.content.v1.tar+gzip`, …)      | a tree if it is a tar, else a file        |
//! | Helm chart (`…helm.chart.content.v1.tar+gzip`)               | the file `NAME-VERSION.tgz` (config)      |
//! | Helm provenance (`…helm.chart.provenance.v1.prov`)           | the file `NAME-VERSION.tgz.prov`          |
//! | titled `application/vnd.oci.image.layer.v1.tar+gzip`, no `/` | a tree if it is a tar (ORAS directory)    |
//! | other titled layer                                           | the file named by the title               |
//! | untitled, tar media type                                     | a tree if it is a tar, else a file        |
//! | anything else                                                | the file `ALG-HEX.EXT`                    |
//!
//! "If it is a tar" is decided from the bytes ([`crate::layer::sniff`]).

use crate::digest::Digest;
use crate::error::{Error, Result};
use crate::select::title::title_path;
use crate::select::{ANNOTATION_TITLE, dir_name, extension, is_tar_layer};
use crate::spec::Descriptor;

/// ORAS's annotation: the layer is a directory packed as a tar (`true`: extract it).
pub const ANNOTATION_UNPACK: &str = "io.deis.oras.content.unpack";
/// Flux's `flux push artifact` content layer.
pub const FLUX_CONTENT: &str = "application/vnd.cncf.flux.content.v1.tar+gzip";
/// Timoni's module content layers.
pub const TIMONI_CONTENT: &str = "application/vnd.timoni.content.v1.tar+gzip";
/// A Helm chart's config (`name`, `version`, ...).
pub const HELM_CONFIG: &str = "application/vnd.cncf.helm.config.v1+json";
/// A Helm chart (`helm push`).
pub const HELM_CHART: &str = "application/vnd.cncf.helm.chart.content.v1.tar+gzip";
/// A Helm chart's provenance file.
pub const HELM_PROVENANCE: &str = "application/vnd.cncf.helm.chart.provenance.v1.prov";
/// The media type ORAS gives a directory it pushes (a tar+gzip titled by the directory name).
pub const ORAS_DIRECTORY: &str = "application/vnd.oci.image.layer.v1.tar+gzip";

/// What a layer becomes.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Treatment {
    /// A filesystem tar applied to the tree; bytes that are no tar are an error.
    Tar,
    /// One file at this path (relative, normalised), holding the blob byte for byte.
    File(String),
    /// A filesystem tar when its bytes are one, else the file at this path.
    TarOrFile(String),
}

impl Treatment {
    /// The path the layer takes as a file, if it may become one.
    pub fn file(&self) -> Option<&str> {
        match self {
            Treatment::Tar => None,
            Treatment::File(p) | Treatment::TarOrFile(p) => Some(p),
        }
    }
}

/// The user's rules: `--extract TYPE` and `--copy TYPE[=NAME]`.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct LayerRules {
    /// Media types to apply as filesystem tars.
    pub extract: Vec<String>,
    /// Media types to keep as files, each with the file name to give it (else the title, else
    /// the digest).
    pub copy: Vec<(String, Option<String>)>,
}

impl LayerRules {
    /// Whether no rule is given.
    pub fn is_empty(&self) -> bool {
        self.extract.is_empty() && self.copy.is_empty()
    }

    /// Parses a `--copy` argument: `TYPE` or `TYPE=NAME`.
    pub fn parse_copy(arg: &str) -> (String, Option<String>) {
        match arg.split_once('=') {
            Some((t, n)) => (t.to_string(), Some(n.to_string())),
            None => (arg.to_string(), None),
        }
    }
}

/// What the whole manifest says about its layers.
#[derive(Clone, Debug)]
pub struct Context<'a> {
    /// The image source, for errors.
    pub image: &'a str,
    /// Whether the config is a container image config (strict rules).
    pub is_image: bool,
    /// The config media type, for errors.
    pub config_media_type: &'a str,
    /// `NAME-VERSION` of a Helm chart's config, when it has safe ones.
    pub helm: Option<String>,
    /// The user's rules.
    pub rules: &'a LayerRules,
    /// Media types selected with `--layer-media-type`.
    pub selected: &'a [String],
}

impl Context<'_> {
    /// The treatment of layer `desc` (blob `digest`).
    ///
    /// # Errors
    /// An unsafe title or `--copy` name; an encrypted layer ([`is_encrypted`]) that
    /// `--copy` does not name; in a container image, a layer that is not a filesystem tar and
    /// that no rule names.
    pub fn treatment(&self, desc: &Descriptor, digest: &Digest) -> Result<Treatment> {
        let mt = desc.media_type.as_str();
        let title = desc.annotations.get(ANNOTATION_TITLE);
        let path = |t: &str| title_path(self.image, digest, t);
        let named = || match title {
            Some(t) => path(t),
            None => Ok(self.default_name(mt, digest)),
        };
        if let Some((_, name)) = self.rules.copy.iter().find(|(t, _)| t == mt) {
            return Ok(Treatment::File(match name {
                Some(n) => path(n)?,
                None => named()?,
            }));
        }
        if self.rules.extract.iter().any(|t| t == mt) {
            return Ok(Treatment::Tar);
        }
        if is_encrypted(mt) {
            return Err(Error::InvalidImage {
                image: self.image.into(),
                reason: format!(
                    "layer {digest} is encrypted (media type {mt:?}): ocitree does not decrypt \
                     layers; decrypt the image first (skopeo copy --decryption-key KEY SOURCE \
                     DEST) and import that"
                ),
            });
        }
        if self.is_image {
            if is_tar_layer(mt) {
                return Ok(Treatment::Tar);
            }
            if self.selected.iter().any(|t| t == mt) {
                return Ok(Treatment::File(named()?));
            }
            return Err(Error::InvalidImage {
                image: self.image.into(),
                reason: format!(
                    "layer {digest} has media type {mt:?}, which is not a filesystem layer of \
                     a container image (its config is {}); to keep it as a file, select it \
                     with --layer-media-type {mt} or --copy {mt}",
                    self.config_media_type
                ),
            });
        }
        let unpack = desc.annotations.get(ANNOTATION_UNPACK).map(String::as_str);
        if unpack == Some("true") {
            // ORAS packs the directory with its name as the first path segment.
            return Ok(Treatment::Tar);
        }
        Ok(match (mt, title) {
            (FLUX_CONTENT | TIMONI_CONTENT, _) => Treatment::TarOrFile(named()?),
            (HELM_CHART, None) => Treatment::File(match &self.helm {
                Some(nv) => format!("{nv}.tgz"),
                None => self.default_name(mt, digest),
            }),
            (HELM_PROVENANCE, None) => Treatment::File(match &self.helm {
                Some(nv) => format!("{nv}.tgz.prov"),
                None => self.default_name(mt, digest),
            }),
            // An ORAS directory (oras-py writes no unpack annotation): extracted at the root,
            // where its entries carry the directory name.
            (ORAS_DIRECTORY, Some(t)) if !path(t)?.contains('/') => Treatment::TarOrFile(path(t)?),
            (_, Some(t)) => Treatment::File(path(t)?),
            (_, None) if is_tar_layer(mt) => Treatment::TarOrFile(self.default_name(mt, digest)),
            (_, None) => Treatment::File(self.default_name(mt, digest)),
        })
    }

    /// `ALG-HEX.EXT`, the name of a layer with no title.
    fn default_name(&self, media_type: &str, digest: &Digest) -> String {
        format!("{}{}", dir_name(digest), extension(media_type))
    }
}

/// Whether a layer media type says the blob is encrypted (ocicrypt's `…+encrypted`): its
/// bytes are ciphertext, whatever the rest of the type says. Only `--copy` takes it as it is.
pub fn is_encrypted(media_type: &str) -> bool {
    media_type.ends_with("+encrypted")
}

/// `NAME-VERSION` from a Helm chart config, when both are safe in a file name.
pub fn helm_name(config: &[u8]) -> Option<String> {
    let v: serde_json::Value = serde_json::from_slice(config).ok()?;
    let name = v.get("name")?.as_str()?;
    let version = v.get("version")?.as_str()?;
    let nv = format!("{name}-{version}");
    let safe = !name.is_empty()
        && !version.is_empty()
        && nv.len() <= 200
        && !nv.starts_with('.')
        && nv
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || "._+-".contains(c));
    safe.then_some(nv)
}

#[cfg(test)]
mod tests {
    use super::*;

    const HEX: &str = "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855";

    fn desc(mt: &str, ann: &[(&str, &str)]) -> Descriptor {
        let mut v =
            serde_json::json!({"mediaType": mt, "digest": format!("sha256:{HEX}"), "size": 0});
        if !ann.is_empty() {
            v["annotations"] = ann
                .iter()
                .map(|(k, v)| (k.to_string(), serde_json::json!(v)))
                .collect();
        }
        serde_json::from_value(v).unwrap()
    }

    fn treat(
        is_image: bool,
        rules: &LayerRules,
        mt: &str,
        ann: &[(&str, &str)],
    ) -> Result<Treatment> {
        let cx = Context {
            image: "img",
            is_image,
            config_media_type: "application/vnd.oci.empty.v1+json",
            helm: Some("demo-1.2.3".into()),
            rules,
            selected: &[],
        };
        cx.treatment(
            &desc(mt, ann),
            &Digest::parse(&format!("sha256:{HEX}")).unwrap(),
        )
    }

    #[test]
    fn producers_conventions() {
        use Treatment::*;
        let none = LayerRules::default();
        let t = |mt, ann: &[(&str, &str)]| treat(false, &none, mt, ann).unwrap();
        let title = |s| (ANNOTATION_TITLE, s);
        let by_digest = |ext: &str| format!("sha256-{HEX}{ext}");
        // oras push FILE: a raw file under the tar media type, kept as the file
        let oras_tar = "application/vnd.oci.image.layer.v1.tar";
        assert_eq!(t(oras_tar, &[title("a/b.txt")]), File("a/b.txt".into()));
        assert_eq!(t(ORAS_DIRECTORY, &[title("dir")]), TarOrFile("dir".into()));
        assert_eq!(
            t(ORAS_DIRECTORY, &[title("dir"), (ANNOTATION_UNPACK, "true")]),
            Tar
        );
        assert_eq!(t(FLUX_CONTENT, &[]), TarOrFile(by_digest(".tar.gz")));
        assert_eq!(t(TIMONI_CONTENT, &[]), TarOrFile(by_digest(".tar.gz")));
        assert_eq!(t(HELM_CHART, &[]), File("demo-1.2.3.tgz".into()));
        assert_eq!(t(HELM_PROVENANCE, &[]), File("demo-1.2.3.tgz.prov".into()));
        assert_eq!(t(oras_tar, &[]), TarOrFile(by_digest(".tar")));
        assert_eq!(t("application/json", &[]), File(by_digest(".json")));
        // user rules win
        let rules = LayerRules {
            extract: vec!["application/x-custom".into()],
            copy: vec![(FLUX_CONTENT.into(), Some("out/flux.tgz".into()))],
        };
        assert_eq!(
            treat(false, &rules, "application/x-custom", &[]).unwrap(),
            Tar
        );
        assert_eq!(
            treat(false, &rules, FLUX_CONTENT, &[]).unwrap(),
            File("out/flux.tgz".into())
        );
        assert_eq!(
            treat(true, &rules, FLUX_CONTENT, &[]).unwrap(),
            File("out/flux.tgz".into())
        );
        // container images: strict
        assert_eq!(
            treat(true, &none, ORAS_DIRECTORY, &[title("x")]).unwrap(),
            Tar
        );
        let e = treat(true, &none, "application/json", &[])
            .unwrap_err()
            .to_string();
        assert!(e.contains("--copy application/json"), "{e}");
        // hostile titles
        for bad in ["../x", "/etc/passwd", ""] {
            assert!(
                treat(false, &none, oras_tar, &[title(bad)]).is_err(),
                "{bad:?}"
            );
        }
    }

    #[test]
    fn helm_names() {
        assert_eq!(
            helm_name(br#"{"name":"demo","version":"1.2.3"}"#).as_deref(),
            Some("demo-1.2.3")
        );
        assert_eq!(helm_name(br#"{"name":"../x","version":"1"}"#), None);
        assert_eq!(helm_name(b"{}"), None);
    }
}

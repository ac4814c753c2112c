//! The ways ocitree reads an image, in one place. Which one applies is decided from the
//! image config's labels before any layer is read, or forced by the user
//! ([`crate::import::ImportOptions::format`], `import --format`).
//!
//! | format | recognised by | read as |
//! |---|---|---|
//! | `plain` | none of the labels below | layers applied in order onto one tree ([`crate::merge`]), committed as the image commit |
//! | `ocitree-encapsulated` | `ocitree.commit` ([`crate::meta::labels`]), written by `ocitree encapsulate` | the layers merged as for `plain`, the tree checked against the commit the labels carry, and that commit written: the identical checksum ([`super::encapsulated`]) |
//! | `flatpak` | `org.flatpak.ref`, written by `flatpak build-bundle --oci` | the layers merged as for `plain`, committed with the flatpak commit metadata the labels carry, and the flatpak ref (`app/…`, `runtime/…`) set beside the image ref ([`super::flatpak`]) |
//! | `ostree-native` | `ostree.commit` and `ostree.final-diffid`, written by ostree-ext (bootc, rpm-ostree, CoreOS) | each layer imported as usual (chunks reused by digest), then the OSTree objects the layers carry written and checked, and the image ref set to **the commit itself**, the one the label names ([`super::ostree_native`]). Layers after `ostree.final-diffid` (derived layers) are applied on that commit's tree as ostree-ext applies them ([`super::ostree_native::derived`]), and the image ref points at the image commit of the result |
//! | `file-tree` | the `artifactType` `application/vnd.ocitree.file-tree.v1` of the selected index or manifest (no config labels: it is an artifact) | a directory tree as nested indexes, one blob per file, rebuilt by [`crate::import::file_tree`] ([`super::file_tree`] is the mapping) |
//!
//! A forced `plain` reads any image as its layers say (an ostree native container then gives
//! a tree with the object store under `sysroot/` and `/etc` where OSTree wants `/usr/etc`).
//! A forced format whose labels are not there is an error.

use std::collections::BTreeMap;
use std::fmt;
use std::str::FromStr;

use crate::error::{Error, Result};
use crate::image::EncapsulatedCommit;
use crate::image::flatpak::{self, FlatpakCommit};
use crate::image::ostree_native::{self, NativeCommit};
use crate::meta::labels;

/// The config label ostree-ext writes on an "ostree native container" image: the checksum
/// of the OSTree commit its layers carry.
pub const OSTREE_NATIVE_COMMIT_LABEL: &str = ostree_native::COMMIT_LABEL;

/// How an image's layers are to be read (see the module documentation).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum ImageFormat {
    /// An ordinary OCI image: layers applied in order.
    Plain,
    /// An OSTree commit carried by `ocitree encapsulate`'s labels.
    Encapsulated,
    /// An ostree-ext "ostree native container" (bootc, rpm-ostree).
    OstreeNative,
    /// A flatpak app or runtime (`flatpak build-bundle --oci`).
    Flatpak,
    /// A directory tree as nested indexes (`ocitree encapsulate --format file-tree`),
    /// recognised by its `artifactType` before any config is read.
    FileTree,
}

impl ImageFormat {
    /// Every format, in the order of the table above.
    pub const ALL: [ImageFormat; 5] = [
        ImageFormat::Plain,
        ImageFormat::Encapsulated,
        ImageFormat::Flatpak,
        ImageFormat::OstreeNative,
        ImageFormat::FileTree,
    ];

    /// The name used on the command line and in `inspect`.
    pub fn as_str(self) -> &'static str {
        match self {
            ImageFormat::Plain => "plain",
            ImageFormat::Encapsulated => "ocitree-encapsulated",
            ImageFormat::OstreeNative => "ostree-native",
            ImageFormat::Flatpak => "flatpak",
            ImageFormat::FileTree => "file-tree",
        }
    }

    /// The format an image's config labels say it has.
    ///
    /// # Examples
    /// ```
    /// use std::collections::BTreeMap;
    /// use ocitree::image::format::ImageFormat;
    /// let mut l = BTreeMap::new();
    /// assert_eq!(ImageFormat::detect(&l), ImageFormat::Plain);
    /// l.insert("ostree.commit".to_string(), "ab12".to_string());
    /// assert_eq!(ImageFormat::detect(&l), ImageFormat::OstreeNative);
    /// ```
    pub fn detect(labels: &BTreeMap<String, String>) -> ImageFormat {
        if labels.contains_key(labels::COMMIT) {
            ImageFormat::Encapsulated
        } else if labels.contains_key(OSTREE_NATIVE_COMMIT_LABEL) {
            ImageFormat::OstreeNative
        } else if labels.contains_key(flatpak::REF_LABEL) {
            ImageFormat::Flatpak
        } else {
            ImageFormat::Plain
        }
    }
}

impl fmt::Display for ImageFormat {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for ImageFormat {
    type Err = Error;

    fn from_str(s: &str) -> Result<ImageFormat> {
        ImageFormat::ALL
            .into_iter()
            .find(|f| f.as_str() == s)
            .ok_or_else(|| Error::Invalid {
                what: format!("--format {s}"),
                reason:
                    "image format must be plain, ocitree-encapsulated, flatpak, ostree-native or file-tree"
                        .into(),
            })
    }
}

/// How the import reads one image: the outcome of [`reading`].
#[derive(Clone, Debug)]
pub enum Reading {
    /// Apply the layers and commit the merged tree.
    Plain,
    /// Apply the layers, check the tree against this commit and write it.
    Encapsulated(Box<EncapsulatedCommit>),
    /// Write the commit whose objects the layers carry.
    OstreeNative(Box<NativeCommit>),
    /// Apply the layers and commit the merged tree as this flatpak commit.
    Flatpak(Box<FlatpakCommit>),
}

impl Reading {
    /// The format this reading implements.
    pub fn format(&self) -> ImageFormat {
        match self {
            Reading::Plain => ImageFormat::Plain,
            Reading::Encapsulated(_) => ImageFormat::Encapsulated,
            Reading::OstreeNative(_) => ImageFormat::OstreeNative,
            Reading::Flatpak(_) => ImageFormat::Flatpak,
        }
    }
}

/// Decides how to read image `image` (named in errors) from its config `labels`, or as
/// `forced` says.
///
/// # Errors
/// [`Error::InvalidImage`] when a forced format's labels are missing, or when the
/// encapsulation or ostree native labels are malformed.
pub fn reading(
    image: &str,
    labels: &BTreeMap<String, String>,
    forced: Option<ImageFormat>,
) -> Result<Reading> {
    let detected = ImageFormat::detect(labels);
    let format = forced.unwrap_or(detected);
    if format != ImageFormat::Plain && format != detected {
        return Err(Error::InvalidImage {
            image: image.to_string(),
            reason: format!(
                "--format {format} was asked for, but the image config labels say {detected}"
            ),
        });
    }
    match format {
        ImageFormat::Plain => Ok(Reading::Plain),
        // Recognised (and read) before any config, by crate::import::file_tree.
        ImageFormat::FileTree => Err(Error::InvalidImage {
            image: image.to_string(),
            reason: "--format file-tree: the image is not a file tree (its artifactType is not \
                     application/vnd.ocitree.file-tree.v1)"
                .into(),
        }),
        ImageFormat::Encapsulated => {
            let commit = EncapsulatedCommit::from_labels(image, labels)?.ok_or_else(|| {
                Error::InvalidImage {
                    image: image.to_string(),
                    reason: format!("label {} is missing", labels::COMMIT),
                }
            })?;
            Ok(Reading::Encapsulated(Box::new(commit)))
        }
        ImageFormat::Flatpak => {
            let commit =
                FlatpakCommit::from_labels(image, labels)?.ok_or_else(|| Error::InvalidImage {
                    image: image.to_string(),
                    reason: format!("label {} is missing", flatpak::REF_LABEL),
                })?;
            Ok(Reading::Flatpak(Box::new(commit)))
        }
        ImageFormat::OstreeNative => Ok(Reading::OstreeNative(Box::new(
            NativeCommit::from_labels(image, labels)?,
        ))),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testing::labels;

    #[test]
    fn names_round_trip() {
        for f in ImageFormat::ALL {
            assert_eq!(f.as_str().parse::<ImageFormat>().unwrap(), f);
        }
        assert!("native".parse::<ImageFormat>().is_err());
    }

    #[test]
    fn ostree_native_is_read_natively_unless_plain_is_forced() {
        let c = "ab".repeat(32);
        let l = labels(&[
            ("ostree.commit", &c),
            ("ostree.final-diffid", "sha256:1"),
            ("ostree.bootable", "true"),
        ]);
        match reading("img", &l, None) {
            Ok(Reading::OstreeNative(n)) => assert_eq!(n.checksum, c),
            other => panic!("{other:?}"),
        }
        assert!(matches!(
            reading("img", &l, Some(ImageFormat::Plain)),
            Ok(Reading::Plain)
        ));
        let old = labels(&[("ostree.commit", &c)]);
        let err = reading("img", &old, None).unwrap_err().to_string();
        assert!(err.contains("--format plain"), "{err}");
    }

    #[test]
    fn a_forced_format_needs_its_labels() {
        let plain = labels(&[("version", "1")]);
        assert!(matches!(reading("img", &plain, None), Ok(Reading::Plain)));
        for f in [
            ImageFormat::Encapsulated,
            ImageFormat::OstreeNative,
            ImageFormat::Flatpak,
        ] {
            let err = reading("img", &plain, Some(f)).unwrap_err().to_string();
            assert!(err.contains("labels say plain"), "{err}");
        }
    }
}

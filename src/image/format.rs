//! The ways ocitree reads an image, in one place. Which one applies is decided from the
//! image config's labels before any layer is read, or forced by the user
//! ([`crate::ImportOptions::format`], `import --format`).
//!
//! | format | recognised by | read as |
//! |---|---|---|
//! | `plain` | none of the labels below | layers applied in order onto one tree ([`crate::merge`]), committed as the image commit |
//! | `ocitree-encapsulated` | `ocitree.commit` ([`crate::meta::labels`]), written by `ocitree encapsulate` | the layers merged as for `plain`, the tree checked against the commit the labels carry, and that commit written: the identical checksum ([`super::encapsulated`]) |
//! | `ostree-native` | `ostree.commit`, written by ostree-ext (bootc, rpm-ostree, CoreOS) | **refused**: its layers hold an OSTree object store (`sysroot/ostree/repo/objects`) and `/etc` where OSTree wants `/usr/etc`; applied as a plain image they give a tree that only looks right. `--format plain` reads it as plain anyway |
//!
//! A forced `plain` reads any image as its layers say. A forced format whose labels are not
//! there is an error, and so is `ostree-native` until ocitree rebuilds such commits.

use std::collections::BTreeMap;
use std::fmt;
use std::str::FromStr;

use crate::error::{Error, Result};
use crate::image::EncapsulatedCommit;
use crate::meta::labels;

/// The config label ostree-ext writes on an "ostree native container" image: the checksum
/// of the OSTree commit its layers carry.
pub const OSTREE_NATIVE_COMMIT_LABEL: &str = "ostree.commit";

/// How an image's layers are to be read (see the module documentation).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum ImageFormat {
    /// An ordinary OCI image: layers applied in order.
    Plain,
    /// An OSTree commit carried by `ocitree encapsulate`'s labels.
    Encapsulated,
    /// An ostree-ext "ostree native container" (bootc, rpm-ostree).
    OstreeNative,
}

impl ImageFormat {
    /// Every format, in the order of the table above.
    pub const ALL: [ImageFormat; 3] = [
        ImageFormat::Plain,
        ImageFormat::Encapsulated,
        ImageFormat::OstreeNative,
    ];

    /// The name used on the command line and in `inspect`.
    pub fn as_str(self) -> &'static str {
        match self {
            ImageFormat::Plain => "plain",
            ImageFormat::Encapsulated => "ocitree-encapsulated",
            ImageFormat::OstreeNative => "ostree-native",
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
            .ok_or_else(|| Error::InvalidReference {
                reference: s.to_string(),
                reason: "image format must be plain, ocitree-encapsulated or ostree-native".into(),
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
}

impl Reading {
    /// The format this reading implements.
    pub fn format(&self) -> ImageFormat {
        match self {
            Reading::Plain => ImageFormat::Plain,
            Reading::Encapsulated(_) => ImageFormat::Encapsulated,
        }
    }
}

/// Decides how to read image `image` (named in errors) from its config `labels`, or as
/// `forced` says.
///
/// # Errors
/// [`Error::InvalidImage`] when the image is an ostree native container and `plain` was not
/// forced, when a forced format's labels are missing, or when the encapsulation labels are
/// malformed.
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
        ImageFormat::Encapsulated => {
            let commit = EncapsulatedCommit::from_labels(image, labels)?.ok_or_else(|| {
                Error::InvalidImage {
                    image: image.to_string(),
                    reason: format!("label {} is missing", labels::COMMIT),
                }
            })?;
            Ok(Reading::Encapsulated(Box::new(commit)))
        }
        ImageFormat::OstreeNative => Err(Error::InvalidImage {
            image: image.to_string(),
            reason: format!(
                "an ostree native container (label {OSTREE_NATIVE_COMMIT_LABEL}={}, as bootc and \
                 rpm-ostree images are): ocitree cannot rebuild its commit yet, and its layers \
                 applied as a plain image give a tree with the object store under sysroot/ and \
                 /etc where OSTree wants /usr/etc; use --format plain to import the layers as \
                 they are anyway",
                labels
                    .get(OSTREE_NATIVE_COMMIT_LABEL)
                    .map(String::as_str)
                    .unwrap_or_default()
            ),
        }),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn labels(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
        pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    #[test]
    fn names_round_trip() {
        for f in ImageFormat::ALL {
            assert_eq!(f.as_str().parse::<ImageFormat>().unwrap(), f);
        }
        assert!("native".parse::<ImageFormat>().is_err());
    }

    #[test]
    fn ostree_native_is_refused_unless_plain_is_forced() {
        let l = labels(&[("ostree.commit", "abc"), ("ostree.bootable", "true")]);
        let err = reading("img", &l, None).unwrap_err().to_string();
        assert!(err.contains("ostree native container"), "{err}");
        assert!(err.contains("--format plain"), "{err}");
        assert!(matches!(
            reading("img", &l, Some(ImageFormat::Plain)),
            Ok(Reading::Plain)
        ));
        assert!(reading("img", &l, Some(ImageFormat::OstreeNative)).is_err());
    }

    #[test]
    fn a_forced_format_needs_its_labels() {
        let plain = labels(&[("version", "1")]);
        assert!(matches!(reading("img", &plain, None), Ok(Reading::Plain)));
        for f in [ImageFormat::Encapsulated, ImageFormat::OstreeNative] {
            let err = reading("img", &plain, Some(f)).unwrap_err().to_string();
            assert!(err.contains("labels say plain"), "{err}");
        }
    }
}

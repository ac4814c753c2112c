//! Where manifests and blobs come from: OCI layout directories, OCI archives and docker
//! archives (files or standard input), and registries, behind one [`Source`] trait.

pub mod docker_archive;
pub mod oci_archive;
pub mod oci_dir;
pub mod registry;
pub mod tar_index;

use std::io::Read;
use std::path::{Path, PathBuf};

use crate::blob::BlobReader;
use crate::digest::Digest;
use crate::error::{Error, Result};
use crate::registry::{ImageReference, RegistryOptions};

/// A store of an OCI layout: its `index.json` and its blobs.
pub trait Source: std::fmt::Debug {
    /// The `index.json` document.
    ///
    /// # Errors
    /// It is missing or unreadable.
    fn index(&mut self) -> Result<Vec<u8>>;

    /// Opens the blob with `digest` (not yet verified: wrap it in a
    /// [`crate::blob::VerifiedReader`]).
    ///
    /// # Errors
    /// [`Error::NotFound`] when the layout has no such blob.
    fn open_blob(&mut self, digest: &Digest) -> Result<BlobReader>;

    /// Announces the blobs an import will open, in order, so that a remote source can start
    /// downloading them (into `spool`, a directory it may create) while earlier ones are
    /// imported, reporting [`crate::progress::Event::LayerDownload`] to `progress`. Local
    /// sources ignore it.
    ///
    /// # Errors
    /// The downloads cannot be started.
    fn prefetch(
        &mut self,
        blobs: &[(Digest, u64)],
        spool: &Path,
        progress: &crate::progress::Reporter,
    ) -> Result<()> {
        let _ = (blobs, spool, progress);
        Ok(())
    }
}

/// Reads a whole metadata document (an `index.json`, a docker `manifest.json` or config),
/// refusing one over [`crate::spec::metadata_limit`] bytes instead of holding it all in
/// memory; `what` names it in errors.
///
/// # Errors
/// Reading fails or the document is too large.
pub fn read_metadata(r: impl Read, what: &str) -> Result<Vec<u8>> {
    let limit = crate::spec::metadata_limit();
    let mut out = Vec::new();
    // One byte over the limit tells a document at the limit from a larger one; saturating, so
    // that `--max-metadata-size 18446744073709551615` means no limit (`+ 1` wrapped to 0 and
    // every document read as empty).
    r.take(limit.saturating_add(1))
        .read_to_end(&mut out)
        .map_err(Error::io(format!("reading {what}")))?;
    if out.len() as u64 > limit {
        return Err(Error::io(format!("reading {what}"))(std::io::Error::new(
            std::io::ErrorKind::InvalidData,
            format!("larger than the {limit} bytes allowed for metadata"),
        )));
    }
    Ok(out)
}

/// Which manifest of a layout to take.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Selector {
    /// Whatever the index holds, if that is one image for the platform.
    Default,
    /// The manifest whose `org.opencontainers.image.ref.name` is this tag.
    Tag(String),
    /// The manifest (or index) with this digest.
    Digest(Digest),
}

/// A parsed image source string such as `oci:DIR:TAG`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum SourceRef {
    /// `oci:DIR[:TAG|@DIGEST]`
    OciDir {
        /// The layout directory.
        path: PathBuf,
        /// Which manifest.
        selector: Selector,
    },
    /// `oci-archive:FILE[:TAG|@DIGEST]`, `oci-archive:-` for standard input.
    OciArchive {
        /// The archive, `None` for standard input.
        path: Option<PathBuf>,
        /// Which manifest.
        selector: Selector,
    },
    /// `docker-archive:FILE[:REFERENCE]` (`docker save` format), `docker-archive:-` for
    /// standard input.
    DockerArchive {
        /// The archive, `None` for standard input.
        path: Option<PathBuf>,
        /// Which image (by one of its `RepoTags`, or its tag alone).
        selector: Selector,
    },
    /// `docker://HOST[:PORT]/REPO[:TAG|@DIGEST]`: a registry repository.
    Registry(ImageReference),
}

fn split_selector(full: &str, rest: &str) -> Result<(String, Selector)> {
    // The first ':' or '@' after the path separates the selector (skopeo's rule for oci:).
    let cut = rest.find([':', '@']);
    let Some(i) = cut else {
        return Ok((rest.to_string(), Selector::Default));
    };
    let (path, sel) = (&rest[..i], &rest[i + 1..]);
    let bad = |reason: &str| Error::InvalidReference {
        reference: full.to_string(),
        reason: reason.to_string(),
    };
    if sel.is_empty() {
        return Err(bad("empty tag or digest after the path"));
    }
    let selector = if rest.as_bytes()[i] == b'@' {
        Selector::Digest(Digest::parse(sel)?)
    } else if let Some(d) = sel.strip_prefix('@') {
        Selector::Digest(Digest::parse(d)?)
    } else if let Some(d) = Digest::parse(sel).ok().filter(|d| d.hasher().is_ok()) {
        // Only digests of a registered algorithm: `img:latest` (a docker-archive reference)
        // follows the digest grammar too.
        Selector::Digest(d)
    } else {
        Selector::Tag(sel.to_string())
    };
    Ok((path.to_string(), selector))
}

impl SourceRef {
    /// Parses a source string.
    ///
    /// # Errors
    /// [`Error::InvalidReference`] for an unknown transport, an empty path or a bad digest.
    ///
    /// # Examples
    /// ```
    /// use ocitree::source::{SourceRef, Selector};
    /// let s = SourceRef::parse("oci:/images/app:v1").unwrap();
    /// assert_eq!(s, SourceRef::OciDir { path: "/images/app".into(), selector: Selector::Tag("v1".into()) });
    /// ```
    pub fn parse(s: &str) -> Result<SourceRef> {
        let bad = |reason: &str| Error::InvalidReference {
            reference: s.to_string(),
            reason: reason.to_string(),
        };
        if let Some(rest) = s.strip_prefix("docker://") {
            return Ok(SourceRef::Registry(ImageReference::parse(rest)?));
        }
        let (transport, rest) = s.split_once(':').ok_or_else(|| {
            bad("expected TRANSPORT:PATH (oci, oci-archive, docker-archive) or docker://REFERENCE")
        })?;
        let (path, selector) = split_selector(s, rest)?;
        if path.is_empty() {
            return Err(bad("empty path"));
        }
        match transport {
            "oci" => Ok(SourceRef::OciDir {
                path: path.into(),
                selector,
            }),
            "oci-archive" => Ok(SourceRef::OciArchive {
                path: (path != "-").then(|| path.into()),
                selector,
            }),
            "docker-archive" => Ok(SourceRef::DockerArchive {
                path: (path != "-").then(|| path.into()),
                selector,
            }),
            other => Err(bad(&format!(
                "unknown transport {other:?} (supported: oci, oci-archive, docker-archive, docker://)"
            ))),
        }
    }

    /// Which manifest the reference selects.
    pub fn selector(&self) -> &Selector {
        match self {
            SourceRef::OciDir { selector, .. }
            | SourceRef::OciArchive { selector, .. }
            | SourceRef::DockerArchive { selector, .. } => selector,
            // The registry source's index holds just the manifest the reference names.
            SourceRef::Registry(_) => &Selector::Default,
        }
    }

    /// A short name for the image when the user gave none: the directory or file name.
    pub fn base_name(&self) -> String {
        let path = match self {
            SourceRef::OciDir { path, .. } => Some(path),
            SourceRef::OciArchive { path, .. } | SourceRef::DockerArchive { path, .. } => {
                path.as_ref()
            }
            SourceRef::Registry(r) => {
                return r
                    .repository
                    .rsplit('/')
                    .next()
                    .unwrap_or("image")
                    .to_string();
            }
        };
        path.and_then(|p| {
            let p = p.canonicalize().unwrap_or_else(|_| p.clone());
            let stem = p.file_stem()?.to_string_lossy().into_owned();
            (!stem.is_empty()).then_some(stem)
        })
        .unwrap_or_else(|| "image".to_string())
    }

    /// Opens the source (a registry with default [`RegistryOptions`]).
    ///
    /// # Errors
    /// The directory or archive cannot be opened or read.
    pub fn open(&self) -> Result<Box<dyn Source>> {
        self.open_with(&RegistryOptions::default())
    }

    /// Opens the source; `registry` says how to reach a registry.
    ///
    /// # Errors
    /// The directory or archive cannot be opened or read, or an auth file is malformed.
    pub fn open_with(&self, registry: &RegistryOptions) -> Result<Box<dyn Source>> {
        match self {
            SourceRef::Registry(r) => Ok(Box::new(registry::Registry::open(r, registry)?)),
            SourceRef::OciDir { path, .. } => Ok(Box::new(oci_dir::OciDir::open(path)?)),
            SourceRef::OciArchive { path: Some(p), .. } => {
                Ok(Box::new(oci_archive::OciArchive::open(p)?))
            }
            SourceRef::OciArchive { path: None, .. } => {
                Ok(Box::new(oci_archive::OciArchive::from_stdin()?))
            }
            SourceRef::DockerArchive { path: Some(p), .. } => {
                Ok(Box::new(docker_archive::DockerArchive::open(p)?))
            }
            SourceRef::DockerArchive { path: None, .. } => {
                Ok(Box::new(docker_archive::DockerArchive::from_stdin()?))
            }
        }
    }
}

impl std::fmt::Display for SourceRef {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let (transport, path, selector) = match self {
            SourceRef::Registry(r) => return write!(f, "docker://{r}"),
            SourceRef::OciDir { path, selector } => ("oci", path.display().to_string(), selector),
            SourceRef::DockerArchive { path, selector } => (
                "docker-archive",
                path.as_ref()
                    .map_or("-".into(), |p| p.display().to_string()),
                selector,
            ),
            SourceRef::OciArchive { path, selector } => (
                "oci-archive",
                path.as_ref()
                    .map_or("-".into(), |p| p.display().to_string()),
                selector,
            ),
        };
        write!(f, "{transport}:{path}")?;
        match selector {
            Selector::Default => Ok(()),
            Selector::Tag(t) => write!(f, ":{t}"),
            Selector::Digest(d) => write!(f, "@{d}"),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_transports() {
        let d = "sha256:e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855";
        assert_eq!(
            SourceRef::parse(&format!("oci:dir@{d}")).unwrap(),
            SourceRef::OciDir {
                path: "dir".into(),
                selector: Selector::Digest(Digest::parse(d).unwrap())
            }
        );
        assert_eq!(
            SourceRef::parse("oci-archive:-").unwrap(),
            SourceRef::OciArchive {
                path: None,
                selector: Selector::Default
            }
        );
        assert_eq!(
            SourceRef::parse("oci:dir").unwrap(),
            SourceRef::OciDir {
                path: "dir".into(),
                selector: Selector::Default
            }
        );
        assert!(SourceRef::parse("docker-daemon:x").is_err());
        let r = SourceRef::parse("docker://127.0.0.1:5000/a/b:1").unwrap();
        assert_eq!(r.to_string(), "docker://127.0.0.1:5000/a/b:1");
        assert_eq!(r.base_name(), "b");
        assert!(SourceRef::parse("docker://UP/x").is_err());
        assert!(SourceRef::parse("oci:").is_err());
        assert!(SourceRef::parse("oci:dir@sha256:nothex").is_err());
        // a reference that looks like a digest of no known algorithm is a tag
        assert_eq!(
            SourceRef::parse("docker-archive:f.tar:img:latest").unwrap(),
            SourceRef::DockerArchive {
                path: Some("f.tar".into()),
                selector: Selector::Tag("img:latest".into())
            }
        );
        assert_eq!(
            SourceRef::parse(&format!("oci:dir:{d}"))
                .unwrap()
                .selector(),
            &Selector::Digest(Digest::parse(d).unwrap())
        );
    }
}

//! Registry image references: `HOST[:PORT]/REPO[:TAG|@DIGEST]`, with docker's rules for short
//! names (`busybox` → `docker.io/library/busybox:latest`).

use std::sync::LazyLock;

use regex::Regex;

use crate::digest::Digest;
use crate::error::{Error, Result};

/// The registry short names resolve to.
pub const DOCKER_HUB: &str = "docker.io";
/// Where [`DOCKER_HUB`]'s API is served.
const DOCKER_HUB_API: &str = "registry-1.docker.io";

static COMPONENT_RE: LazyLock<Regex> =
    LazyLock::new(|| Regex::new(r"^[a-z0-9]+(?:(?:[._]|__|-+)[a-z0-9]+)*$").expect("static regex"));
static TAG_RE: LazyLock<Regex> =
    LazyLock::new(|| Regex::new(r"^[A-Za-z0-9_][A-Za-z0-9_.-]{0,127}$").expect("static regex"));
static HOST_RE: LazyLock<Regex> = LazyLock::new(|| {
    Regex::new(r"^(?:[A-Za-z0-9](?:[A-Za-z0-9-]*[A-Za-z0-9])?(?:\.[A-Za-z0-9](?:[A-Za-z0-9-]*[A-Za-z0-9])?)*|\[[0-9A-Fa-f:.]+\])(?::[0-9]{1,5})?$")
        .expect("static regex")
});

/// A parsed registry reference.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct ImageReference {
    /// `host[:port]` as written (`docker.io` for short names).
    pub registry: String,
    /// The repository path (`library/busybox`).
    pub repository: String,
    /// The tag; `latest` when neither tag nor digest is given.
    pub tag: Option<String>,
    /// The manifest digest; takes precedence over the tag.
    pub digest: Option<Digest>,
}

impl ImageReference {
    /// Parses `[HOST[:PORT]/]REPO[:TAG][@DIGEST]` (without the `docker://` prefix).
    ///
    /// # Errors
    /// [`Error::InvalidReference`] when a part does not follow docker's reference grammar.
    ///
    /// # Examples
    /// ```
    /// use ocitree::registry::ImageReference;
    /// let r = ImageReference::parse("127.0.0.1:5000/test/img:1").unwrap();
    /// assert_eq!((r.registry.as_str(), r.repository.as_str()), ("127.0.0.1:5000", "test/img"));
    /// assert_eq!(r.tag.as_deref(), Some("1"));
    /// let r = ImageReference::parse("busybox").unwrap();
    /// assert_eq!(r.to_string(), "docker.io/library/busybox:latest");
    /// ```
    pub fn parse(s: &str) -> Result<ImageReference> {
        let bad = |reason: &str| Error::InvalidReference {
            reference: format!("docker://{s}"),
            reason: reason.to_string(),
        };
        let (name, digest) = match s.rsplit_once('@') {
            Some((n, d)) => (n, Some(Digest::parse(d)?)),
            None => (s, None),
        };
        let (name, tag) = match name.rsplit_once(':') {
            Some((n, t)) if !t.contains('/') => (n, Some(t.to_string())),
            _ => (name, None),
        };
        if let Some(t) = &tag
            && !TAG_RE.is_match(t)
        {
            return Err(bad(&format!("invalid tag {t:?}")));
        }
        let (registry, repository) = match name.split_once('/') {
            Some((first, rest))
                if first.contains('.') || first.contains(':') || first == "localhost" =>
            {
                (first.to_string(), rest.to_string())
            }
            Some(_) => (DOCKER_HUB.to_string(), name.to_string()),
            None => (DOCKER_HUB.to_string(), format!("library/{name}")),
        };
        if !HOST_RE.is_match(&registry) {
            return Err(bad(&format!("invalid registry host {registry:?}")));
        }
        if repository.is_empty() || !repository.split('/').all(|c| COMPONENT_RE.is_match(c)) {
            return Err(bad(
                "a repository is lowercase letters, digits and separators (. _ __ -) between /",
            ));
        }
        if repository.len() > 255 {
            return Err(bad("repository name longer than 255 characters"));
        }
        let tag = if tag.is_none() && digest.is_none() {
            Some("latest".to_string())
        } else {
            tag
        };
        Ok(ImageReference {
            registry,
            repository,
            tag,
            digest,
        })
    }

    /// The host the API is served from (`registry-1.docker.io` for docker.io).
    pub fn api_host(&self) -> &str {
        if self.registry == DOCKER_HUB {
            DOCKER_HUB_API
        } else {
            &self.registry
        }
    }

    /// What to put after `/manifests/`: the digest if there is one, else the tag.
    pub fn manifest_reference(&self) -> String {
        match (&self.digest, &self.tag) {
            (Some(d), _) => d.to_string(),
            (None, Some(t)) => t.clone(),
            (None, None) => "latest".to_string(),
        }
    }
}

impl std::fmt::Display for ImageReference {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}/{}", self.registry, self.repository)?;
        if let Some(t) = &self.tag {
            write!(f, ":{t}")?;
        }
        if let Some(d) = &self.digest {
            write!(f, "@{d}")?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const D: &str = "sha256:e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855";

    #[test]
    fn docker_short_names() {
        let r = ImageReference::parse("busybox").unwrap();
        assert_eq!(r.registry, "docker.io");
        assert_eq!(r.repository, "library/busybox");
        assert_eq!(r.api_host(), "registry-1.docker.io");
        let r = ImageReference::parse("user/app:1.0").unwrap();
        assert_eq!(r.repository, "user/app");
        assert_eq!(r.tag.as_deref(), Some("1.0"));
        let r = ImageReference::parse("localhost/app").unwrap();
        assert_eq!(r.registry, "localhost");
    }

    #[test]
    fn hosts_ports_tags_digests() {
        let r = ImageReference::parse(&format!("127.0.0.1:5000/a/b@{D}")).unwrap();
        assert_eq!(r.registry, "127.0.0.1:5000");
        assert_eq!(r.tag, None);
        assert_eq!(r.manifest_reference(), D);
        assert_eq!(r.to_string(), format!("127.0.0.1:5000/a/b@{D}"));
        let r = ImageReference::parse(&format!("quay.io/x/y:v1@{D}")).unwrap();
        assert_eq!(r.tag.as_deref(), Some("v1"));
        assert_eq!(r.manifest_reference(), D);
        let r = ImageReference::parse("example.com:443/x").unwrap();
        assert_eq!(r.manifest_reference(), "latest");
    }

    #[test]
    fn rejects_bad_names() {
        for bad in [
            "",
            "UPPER/case",
            "host.io/",
            "host.io/a//b",
            "a:bad tag",
            "a@sha256:short",
            "bad host.io/x",
            "host.io/-x",
        ] {
            assert!(ImageReference::parse(bad).is_err(), "{bad:?}");
        }
    }
}

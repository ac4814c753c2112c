//! Mirrors, insecure and blocked registries from `registries.conf` (version 2 TOML), as
//! containers-registries.conf(5) describes them.
//!
//! Files read: `--registries-conf FILE` alone when given, else `$CONTAINERS_REGISTRIES_CONF`
//! alone when set, else `~/.config/containers/registries.conf` if it exists, otherwise
//! `/etc/containers/registries.conf`, then the drop-ins `*.conf` of
//! `/etc/containers/registries.conf.d` and `~/.config/containers/registries.conf.d` in name
//! order. A `[[registry]]` of a later file replaces an earlier one with the same prefix.
//! Missing files are no error; malformed ones are.
//!
//! ```toml
//! [[registry]]
//! prefix = "example.com/team"       # default: location; "*.example.com" matches subdomains
//! location = "registry.example.com/team"
//! insecure = false                  # true: HTTPS without verifying, or plain HTTP
//! blocked = false                   # true: pulls and pushes are refused
//! mirror-by-digest-only = false     # true: the mirrors serve digest references only
//! [[registry.mirror]]
//! location = "mirror.internal:5000/team"
//! insecure = true
//! pull-from-mirror = "all"          # or "digest-only", "tag-only"
//! ```
//!
//! A reference `HOST[:PORT]/REPO[:TAG|@DIGEST]` uses the entry whose prefix matches it
//! longest (a prefix matches at a `/`, `:` or `@` boundary, or the whole name). A pull tries
//! the entry's mirrors in order, then the (rewritten) location; the first that serves the
//! manifest serves the blobs too, and the places after it the blobs it fails on
//! ([`crate::registry::places`]). A push goes to the reference as written; only `blocked` and
//! `insecure` apply to it, as in containers/image. Other keys
//! (`unqualified-search-registries`, `[aliases]`, …) are ignored; the version 1 format
//! (`[registries.search]`) is refused.

use std::path::{Path, PathBuf};

use serde::Deserialize;

use crate::error::{Error, Result};
use crate::registry::reference::ImageReference;
use crate::registry::{RegistryOptions, Tls};

/// The environment variable naming the one registries.conf to read, as containers/image has it.
pub const REGISTRIES_CONF_ENV: &str = "CONTAINERS_REGISTRIES_CONF";

#[derive(Debug, Default, Deserialize)]
struct File {
    #[serde(default)]
    registry: Vec<Entry>,
    /// The version 1 format's table.
    registries: Option<toml::Value>,
}

/// One `[[registry]]`.
#[derive(Clone, Debug, Default, Deserialize)]
#[serde(rename_all = "kebab-case")]
struct Entry {
    prefix: Option<String>,
    #[serde(default)]
    location: String,
    #[serde(default)]
    insecure: bool,
    #[serde(default)]
    blocked: bool,
    #[serde(default)]
    mirror_by_digest_only: bool,
    #[serde(default)]
    mirror: Vec<Mirror>,
}

/// One `[[registry.mirror]]`.
#[derive(Clone, Debug, Default, Deserialize)]
#[serde(rename_all = "kebab-case")]
struct Mirror {
    location: String,
    #[serde(default)]
    insecure: bool,
    pull_from_mirror: Option<String>,
}

impl Entry {
    fn prefix(&self) -> &str {
        self.prefix.as_deref().unwrap_or(&self.location)
    }
}

/// The `[[registry]]` entries in force.
#[derive(Clone, Debug, Default)]
pub struct RegistriesConf {
    entries: Vec<Entry>,
}

/// One place to pull from: a reference on a mirror or on the origin, and whether its
/// certificate goes unverified.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Endpoint {
    /// The reference with the prefix rewritten to this place.
    pub reference: ImageReference,
    /// `insecure = true`.
    pub insecure: bool,
    /// A mirror (not the registry's own location).
    pub mirror: bool,
}

impl Endpoint {
    /// `opts` with TLS verification off when this endpoint is insecure, unless the user set
    /// it ([`RegistryOptions::tls_set`]).
    pub fn options(&self, opts: &RegistryOptions) -> RegistryOptions {
        let mut o = opts.clone();
        if self.insecure && !opts.tls_set {
            o.tls = Tls::NoVerify;
        }
        o
    }
}

fn conf_error(path: &Path, reason: impl std::fmt::Display) -> Error {
    Error::Registry {
        url: path.display().to_string(),
        reason: format!("registries.conf: {reason}"),
    }
}

/// The `*.conf` files of `dir` in name order (none when it does not exist).
fn drop_ins(dir: &Path) -> Vec<PathBuf> {
    let mut v: Vec<PathBuf> = std::fs::read_dir(dir)
        .map(|d| {
            d.filter_map(|e| e.ok().map(|e| e.path()))
                .filter(|p| p.extension().is_some_and(|e| e == "conf"))
                .collect()
        })
        .unwrap_or_default();
    v.sort();
    v
}

impl RegistriesConf {
    /// The files to read: `explicit`, else as the module documentation says.
    pub fn files(explicit: Option<&Path>) -> Vec<PathBuf> {
        if let Some(f) = explicit {
            return vec![f.to_path_buf()];
        }
        if let Some(f) = std::env::var_os(REGISTRIES_CONF_ENV).filter(|v| !v.is_empty()) {
            return vec![f.into()];
        }
        let home = std::env::var_os("HOME")
            .filter(|v| !v.is_empty())
            .map(|h| PathBuf::from(h).join(".config/containers"));
        let user = home.as_ref().map(|h| h.join("registries.conf"));
        let mut files = vec![match user {
            Some(u) if u.is_file() => u,
            _ => "/etc/containers/registries.conf".into(),
        }];
        files.extend(drop_ins(Path::new("/etc/containers/registries.conf.d")));
        if let Some(h) = &home {
            files.extend(drop_ins(&h.join("registries.conf.d")));
        }
        files
    }

    /// Reads the files [`RegistriesConf::files`] lists (a missing file counts as empty, except
    /// `explicit`).
    ///
    /// # Errors
    /// A file is unreadable or malformed, uses the version 1 format, or `explicit` is missing.
    pub fn load(explicit: Option<&Path>) -> Result<RegistriesConf> {
        let mut conf = RegistriesConf::default();
        for path in Self::files(explicit) {
            let text = match std::fs::read_to_string(&path) {
                Ok(t) => t,
                Err(e) if e.kind() == std::io::ErrorKind::NotFound && explicit.is_none() => {
                    continue;
                }
                Err(e) => return Err(Error::io(format!("reading {}", path.display()))(e)),
            };
            conf.add(&path, &text)?;
        }
        Ok(conf)
    }

    /// Adds the entries of one file's `text` (`path` names it in errors).
    ///
    /// # Errors
    /// Malformed TOML or entries, or the version 1 format.
    pub fn add(&mut self, path: &Path, text: &str) -> Result<()> {
        let file: File = toml::from_str(text).map_err(|e| conf_error(path, e))?;
        if file.registries.is_some() {
            return Err(conf_error(
                path,
                "the version 1 format ([registries.search], [registries.insecure]) is not \
                 supported: use [[registry]] tables (containers-registries.conf(5))",
            ));
        }
        for e in file.registry {
            if e.prefix().is_empty() {
                return Err(conf_error(
                    path,
                    "a [[registry]] without prefix or location",
                ));
            }
            for m in &e.mirror {
                if m.location.is_empty() {
                    return Err(conf_error(
                        path,
                        format!("a mirror of {} without location", e.prefix()),
                    ));
                }
                if let Some(p) = &m.pull_from_mirror
                    && !["all", "digest-only", "tag-only"].contains(&p.as_str())
                {
                    return Err(conf_error(
                        path,
                        format!("pull-from-mirror {p:?}: expected all, digest-only or tag-only"),
                    ));
                }
            }
            self.entries.retain(|old| old.prefix() != e.prefix());
            self.entries.push(e);
        }
        Ok(())
    }

    /// The entry whose prefix matches `name` (`HOST/REPO[:TAG][@DIGEST]`) longest.
    fn find(&self, name: &str) -> Option<&Entry> {
        let host = name.split('/').next().unwrap_or_default();
        self.entries
            .iter()
            .filter(|e| matches(e.prefix(), name, host))
            .max_by_key(|e| e.prefix().len())
    }

    /// Where to pull `reference` from, in order: the mirrors that apply, then the origin.
    ///
    /// # Errors
    /// The registry is blocked, or a rewritten reference is not valid.
    pub fn pull_endpoints(&self, reference: &ImageReference) -> Result<Vec<Endpoint>> {
        let name = reference.to_string();
        let Some(e) = self.find(&name) else {
            return Ok(vec![Endpoint {
                reference: reference.clone(),
                insecure: false,
                mirror: false,
            }]);
        };
        if e.blocked {
            return Err(blocked(reference, e));
        }
        let by_digest = reference.digest.is_some();
        let mut out = Vec::new();
        for m in &e.mirror {
            let serves = match m.pull_from_mirror.as_deref() {
                Some("digest-only") => by_digest,
                Some("tag-only") => !by_digest,
                Some(_) => true,
                None => by_digest || !e.mirror_by_digest_only,
            };
            if serves {
                out.push(Endpoint {
                    reference: rewrite(reference, e.prefix(), &m.location)?,
                    insecure: m.insecure,
                    mirror: true,
                });
            }
        }
        let location = if e.location.is_empty() {
            e.prefix()
        } else {
            &e.location
        };
        out.push(Endpoint {
            reference: rewrite(reference, e.prefix(), location)?,
            insecure: e.insecure,
            mirror: false,
        });
        Ok(out)
    }

    /// How to push to `reference`: the reference itself, insecure or not.
    ///
    /// # Errors
    /// The registry is blocked.
    pub fn push_endpoint(&self, reference: &ImageReference) -> Result<Endpoint> {
        let e = self.find(&reference.to_string());
        if let Some(e) = e.filter(|e| e.blocked) {
            return Err(blocked(reference, e));
        }
        Ok(Endpoint {
            reference: reference.clone(),
            insecure: e.is_some_and(|e| e.insecure),
            mirror: false,
        })
    }
}

fn blocked(reference: &ImageReference, e: &Entry) -> Error {
    Error::Invalid {
        what: format!("docker://{reference}"),
        reason: format!(
            "the registry is blocked in registries.conf ([[registry]] prefix {:?})",
            e.prefix()
        ),
    }
}

/// Whether `prefix` matches `name` (whose host part is `host`).
fn matches(prefix: &str, name: &str, host: &str) -> bool {
    if let Some(domain) = prefix.strip_prefix("*.") {
        let h = host.split(':').next().unwrap_or_default();
        return h.len() > domain.len() + 1 && h.ends_with(&format!(".{domain}"));
    }
    name.strip_prefix(prefix)
        .is_some_and(|rest| rest.is_empty() || rest.starts_with(['/', ':', '@']))
}

/// `reference` with `prefix` replaced by `location` (a wildcard prefix leaves the name as is).
fn rewrite(reference: &ImageReference, prefix: &str, location: &str) -> Result<ImageReference> {
    let name = reference.to_string();
    if prefix.starts_with("*.") {
        return Ok(reference.clone());
    }
    let rest = name.strip_prefix(prefix).unwrap_or_default();
    ImageReference::parse(&format!("{location}{rest}"))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn conf(text: &str) -> RegistriesConf {
        let mut c = RegistriesConf::default();
        c.add(Path::new("test.conf"), text).unwrap();
        c
    }

    fn pulls(c: &RegistriesConf, r: &str) -> Vec<String> {
        c.pull_endpoints(&ImageReference::parse(r).unwrap())
            .unwrap()
            .iter()
            .map(|e| format!("{}{}", e.reference, if e.insecure { " !" } else { "" }))
            .collect()
    }

    const D: &str = "sha256:e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855";

    #[test]
    fn longest_prefix_wins_and_mirrors_come_first() {
        let c = conf(
            r#"
unqualified-search-registries = ["docker.io"]
[[registry]]
location = "example.com"
[[registry.mirror]]
location = "m1.local:5000"
[[registry]]
prefix = "example.com/team"
location = "team.example.com/t"
insecure = true
[[registry.mirror]]
location = "m2.local/x"
insecure = true
[[registry.mirror]]
location = "m3.local"
pull-from-mirror = "digest-only"
"#,
        );
        assert_eq!(
            pulls(&c, "example.com/team/app:1"),
            ["m2.local/x/app:1 !", "team.example.com/t/app:1 !"]
        );
        assert_eq!(
            pulls(&c, &format!("example.com/team/app@{D}")),
            [
                format!("m2.local/x/app@{D} !"),
                format!("m3.local/app@{D}"),
                format!("team.example.com/t/app@{D} !"),
            ]
        );
        // "team2" is not under "team": the boundary is / : @
        assert_eq!(
            pulls(&c, "example.com/team2/app"),
            [
                "m1.local:5000/team2/app:latest",
                "example.com/team2/app:latest"
            ]
        );
        assert_eq!(pulls(&c, "other.io/a"), ["other.io/a:latest"]);
    }

    #[test]
    fn digest_only_mirrors_blocked_and_wildcards() {
        let c = conf(
            r#"
[[registry]]
location = "quay.io"
mirror-by-digest-only = true
[[registry.mirror]]
location = "mirror.local"
[[registry]]
prefix = "*.corp.example"
insecure = true
[[registry]]
location = "bad.io"
blocked = true
"#,
        );
        assert_eq!(pulls(&c, "quay.io/a/b:1"), ["quay.io/a/b:1"]);
        assert_eq!(
            pulls(&c, &format!("quay.io/a/b@{D}")),
            [format!("mirror.local/a/b@{D}"), format!("quay.io/a/b@{D}")]
        );
        assert_eq!(pulls(&c, "r.corp.example/a"), ["r.corp.example/a:latest !"]);
        assert_eq!(pulls(&c, "corp.example/a"), ["corp.example/a:latest"]);
        let bad = ImageReference::parse("bad.io/x").unwrap();
        let e = c.pull_endpoints(&bad).unwrap_err().to_string();
        assert!(e.contains("blocked"), "{e}");
        assert!(c.push_endpoint(&bad).is_err());
        let r = ImageReference::parse("r.corp.example/a").unwrap();
        assert!(c.push_endpoint(&r).unwrap().insecure);
    }

    #[test]
    fn later_files_replace_entries_and_bad_files_are_errors() {
        let mut c = conf("[[registry]]\nlocation = \"a.io\"\nblocked = true\n");
        c.add(Path::new("b.conf"), "[[registry]]\nlocation = \"a.io\"\n")
            .unwrap();
        assert_eq!(pulls(&c, "a.io/x"), ["a.io/x:latest"]);
        for bad in [
            "[registries.search]\nregistries = [\"a.io\"]\n",
            "[[registry]]\ninsecure = true\n",
            "[[registry]]\nlocation = \"a.io\"\n[[registry.mirror]]\nlocation = \"m\"\npull-from-mirror = \"some\"\n",
            "[[registry]\n",
        ] {
            let mut c = RegistriesConf::default();
            let e = c.add(Path::new("bad.conf"), bad).unwrap_err().to_string();
            assert!(e.contains("bad.conf"), "{e}");
        }
    }
}

//! Registry credentials and challenges.
//!
//! Auth files: `--authfile PATH`, else `$REGISTRY_AUTH_FILE`,
//! `${XDG_RUNTIME_DIR}/containers/auth.json` and `~/.docker/config.json`, in this order.
//! Credentials come from, in this precedence:
//!
//! 1. `--creds USER:PASS`;
//! 2. a `credHelpers` entry for the registry host, in the first file having one: its
//!    `docker-credential-NAME get` is run ([`cred_helper`]);
//! 3. an `auths` entry for the registry (or for a namespace of it, `host/ns`, the longest
//!    match winning as in containers-auth.json(5)), in the first file having one;
//! 4. the `credsStore` helper of the first file naming one.
//!
//! A helper that has no credentials for the registry passes on to the next step; a helper
//! that fails is an error naming it.
//!
//! A registry tells how to authenticate in the `WWW-Authenticate` header of a 401 answer:
//! `Basic` (send the credentials with every request) or `Bearer` (fetch a token from the
//! `realm`, with the credentials if there are any, and send the token).

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use serde::Deserialize;

use crate::error::{Error, Result};
use crate::registry::cred_helper;
use crate::registry::credentials::Credentials;
use crate::registry::reference::{DOCKER_HUB, ImageReference};

#[derive(Deserialize)]
struct AuthFile {
    #[serde(default)]
    auths: BTreeMap<String, AuthEntry>,
    #[serde(default, rename = "credHelpers")]
    cred_helpers: BTreeMap<String, String>,
    #[serde(default, rename = "credsStore")]
    creds_store: Option<String>,
}

#[derive(Deserialize)]
struct AuthEntry {
    #[serde(default)]
    auth: Option<String>,
}

/// The auth files searched when no `--authfile` is given, in order.
pub fn default_auth_files() -> Vec<PathBuf> {
    let mut files = Vec::new();
    if let Some(p) = std::env::var_os("REGISTRY_AUTH_FILE").filter(|v| !v.is_empty()) {
        files.push(PathBuf::from(p));
    }
    if let Some(d) = std::env::var_os("XDG_RUNTIME_DIR").filter(|v| !v.is_empty()) {
        files.push(PathBuf::from(d).join("containers/auth.json"));
    }
    if let Some(h) = std::env::var_os("HOME").filter(|v| !v.is_empty()) {
        files.push(PathBuf::from(h).join(".docker/config.json"));
    }
    files
}

/// The registry (and optional path) an auth-file key names: scheme and docker's `/v1/`
/// suffix removed, docker.io's aliases folded.
fn normalise_key(key: &str) -> String {
    let k = key
        .strip_prefix("https://")
        .or_else(|| key.strip_prefix("http://"))
        .unwrap_or(key);
    let k = k.strip_suffix("/v1/").unwrap_or(k).trim_end_matches('/');
    let (host, path) = k.split_once('/').unwrap_or((k, ""));
    let host = match host {
        "index.docker.io" | "registry-1.docker.io" => DOCKER_HUB,
        h => h,
    };
    if path.is_empty() {
        host.to_string()
    } else {
        format!("{host}/{path}")
    }
}

/// Reads the auth file at `path`; `Ok(None)` when it does not exist.
fn read_auth_file(path: &Path) -> Result<Option<AuthFile>> {
    let bytes = match std::fs::read(path) {
        Ok(b) => b,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
        Err(e) => {
            return Err(Error::io(format!("reading auth file {}", path.display()))(
                e,
            ));
        }
    };
    serde_json::from_slice(&bytes)
        .map(Some)
        .map_err(|e| Error::Invalid {
            what: format!("auth file {}", path.display()),
            reason: format!("not an auth file: {e}"),
        })
}

/// Looks `reference` up in the `auths` of the auth file at `path`; `Ok(None)` when the file
/// does not exist or has no entry for it.
///
/// # Errors
/// The file exists but cannot be read or parsed, or its entry is not base64 `user:pass`.
pub fn from_auth_file(path: &Path, reference: &ImageReference) -> Result<Option<Credentials>> {
    match read_auth_file(path)? {
        Some(file) => from_auths(&file, path, reference),
        None => Ok(None),
    }
}

fn from_auths(
    file: &AuthFile,
    path: &Path,
    reference: &ImageReference,
) -> Result<Option<Credentials>> {
    let bad = |reason: String| Error::Invalid {
        what: format!("auth file {}", path.display()),
        reason,
    };
    let full = format!("{}/{}", reference.registry, reference.repository);
    let best = file
        .auths
        .iter()
        .filter_map(|(k, v)| {
            let k = normalise_key(k);
            let matches = k == reference.registry
                || (full.starts_with(&k) && full.as_bytes().get(k.len()) == Some(&b'/'))
                || k == full;
            (matches && v.auth.is_some()).then_some((k.len(), v))
        })
        .max_by_key(|(len, _)| *len);
    let Some((_, entry)) = best else {
        return Ok(None);
    };
    let raw = entry.auth.as_deref().unwrap_or_default();
    let decoded = STANDARD
        .decode(raw.trim())
        .ok()
        .and_then(|b| String::from_utf8(b).ok())
        .ok_or_else(|| {
            bad(format!(
                "auth entry for {} is not base64",
                reference.registry
            ))
        })?;
    Credentials::parse(&decoded).map(Some).map_err(|_| {
        bad(format!(
            "auth entry for {} is not user:password",
            reference.registry
        ))
    })
}

/// Finds credentials for `reference` in the precedence the module describes: `creds` if
/// given, else from `files`.
///
/// # Errors
/// An auth file exists but is unreadable or malformed; a credential helper fails.
pub fn lookup(
    creds: Option<&Credentials>,
    files: &[PathBuf],
    reference: &ImageReference,
) -> Result<Option<Credentials>> {
    if let Some(c) = creds {
        return Ok(Some(c.clone()));
    }
    let mut parsed = Vec::new();
    for f in files {
        if let Some(file) = read_auth_file(f)? {
            parsed.push((f, file));
        }
    }
    let helper = parsed.iter().find_map(|(_, file)| {
        file.cred_helpers
            .iter()
            .find(|(k, _)| normalise_key(k) == reference.registry)
            .map(|(_, name)| name)
    });
    if let Some(name) = helper
        && let Some(c) = cred_helper::get(name, &reference.registry)?
    {
        return Ok(Some(c));
    }
    for (path, file) in &parsed {
        if let Some(c) = from_auths(file, path, reference)? {
            return Ok(Some(c));
        }
    }
    match parsed.iter().find_map(|(_, f)| f.creds_store.as_deref()) {
        Some(store) if !store.is_empty() => cred_helper::get(store, &reference.registry),
        _ => Ok(None),
    }
}

/// A parsed `WWW-Authenticate` challenge.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Challenge {
    /// `basic` or `bearer` (lowercased).
    pub scheme: String,
    /// Its parameters (`realm`, `service`, `scope`), names lowercased.
    pub params: BTreeMap<String, String>,
}

impl Challenge {
    /// Parses one challenge such as `Bearer realm="https://auth",service="reg",scope="x"`.
    /// Returns `None` for a header without a scheme.
    pub fn parse(header: &str) -> Option<Challenge> {
        let header = header.trim();
        let (scheme, mut rest) = header.split_once(' ').unwrap_or((header, ""));
        if scheme.is_empty() {
            return None;
        }
        let mut params = BTreeMap::new();
        loop {
            rest = rest.trim_start_matches([' ', ',']);
            let Some((name, after)) = rest.split_once('=') else {
                break;
            };
            let name = name.trim().to_ascii_lowercase();
            let after = after.trim_start();
            let (value, next) = if let Some(q) = after.strip_prefix('"') {
                let mut value = String::new();
                let mut chars = q.char_indices();
                let mut end = q.len();
                while let Some((i, c)) = chars.next() {
                    match c {
                        '\\' => {
                            if let Some((_, n)) = chars.next() {
                                value.push(n);
                            }
                        }
                        '"' => {
                            end = i + 1;
                            break;
                        }
                        c => value.push(c),
                    }
                }
                (value, &q[end.min(q.len())..])
            } else {
                let end = after.find(',').unwrap_or(after.len());
                (after[..end].trim().to_string(), &after[end..])
            };
            params.insert(name, value);
            rest = next;
        }
        Some(Challenge {
            scheme: scheme.to_ascii_lowercase(),
            params,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_challenges() {
        let c = Challenge::parse(
            r#"Bearer realm="https://auth.docker.io/token",service="registry.docker.io",scope="repository:library/busybox:pull""#,
        )
        .unwrap();
        assert_eq!(c.scheme, "bearer");
        assert_eq!(c.params["realm"], "https://auth.docker.io/token");
        assert_eq!(c.params["scope"], "repository:library/busybox:pull");
        let c = Challenge::parse(r#"Basic realm="Registry Realm""#).unwrap();
        assert_eq!(c.scheme, "basic");
        assert_eq!(c.params["realm"], "Registry Realm");
        let c = Challenge::parse(r#"Bearer realm=x, error="a\"b""#).unwrap();
        assert_eq!(c.params["realm"], "x");
        assert_eq!(c.params["error"], "a\"b");
        assert!(Challenge::parse("").is_none());
    }

    mod fuzz {
        use super::*;
        use crate::testing::{fuzz_cases, mutated};
        use proptest::prelude::*;

        const SEED: &str = r#"Bearer realm="https://auth.example/token",service="reg",scope="repository:a/b:pull", error="a\"b",x=y"#;

        proptest! {
            #![proptest_config(ProptestConfig::with_cases(fuzz_cases(2000)))]

            /// Fuzz target: WWW-Authenticate parsing of mutated and arbitrary headers never
            /// panics; a parsed challenge has a lowercase, space-free scheme.
            #[test]
            fn challenges_never_panic(h in prop_oneof![
                mutated(SEED.as_bytes().to_vec()).prop_map(|b| String::from_utf8_lossy(&b).into_owned()),
                "\\PC*",
                r#"[A-Za-z]{0,6} ([a-z]{0,3}=("[^"]{0,5}"?|[^,]{0,4})[, ]{0,2}){0,4}\\?"?"#,
            ]) {
                if let Some(c) = Challenge::parse(&h) {
                    prop_assert!(!c.scheme.is_empty() && !c.scheme.contains(' '));
                    prop_assert_eq!(c.scheme.to_ascii_lowercase(), c.scheme.clone());
                }
            }

            /// Fuzz target: auth files with mutated JSON give credentials or an error.
            #[test]
            fn auth_files_never_panic(json in mutated(
                br#"{"auths":{"reg.example:5000":{"auth":"dTpwOnc="},"https://index.docker.io/v1/":{"auth":"aHViOnB3"}}}"#.to_vec()
            )) {
                let dir = tempfile::tempdir().unwrap();
                let p = dir.path().join("auth.json");
                std::fs::write(&p, &json).unwrap();
                for r in ["reg.example:5000/a", "busybox"] {
                    let _ = from_auth_file(&p, &ImageReference::parse(r).unwrap());
                }
            }
        }
    }

    #[test]
    fn auth_file_lookup() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("auth.json");
        let enc = |s: &str| STANDARD.encode(s);
        std::fs::write(
            &p,
            serde_json::json!({"auths": {
                "https://index.docker.io/v1/": {"auth": enc("hub:pw")},
                "reg.example:5000": {"auth": enc("u:p:w")},
                "reg.example:5000/team": {"auth": enc("team:x")},
            }})
            .to_string(),
        )
        .unwrap();
        let get = |r: &str| from_auth_file(&p, &ImageReference::parse(r).unwrap()).unwrap();
        assert_eq!(get("busybox").unwrap().username, "hub");
        let c = get("reg.example:5000/other/img").unwrap();
        assert_eq!((c.username.as_str(), c.password.as_str()), ("u", "p:w"));
        assert_eq!(get("reg.example:5000/team/img").unwrap().username, "team");
        assert!(get("reg.example:5000/teamx/img").unwrap().username == "u");
        assert!(get("other.example/x").is_none());
        assert!(
            from_auth_file(
                &dir.path().join("none"),
                &ImageReference::parse("a").unwrap()
            )
            .unwrap()
            .is_none()
        );
        std::fs::write(&p, "{").unwrap();
        assert!(from_auth_file(&p, &ImageReference::parse("a").unwrap()).is_err());
    }

    #[test]
    fn creds_flag() {
        assert_eq!(Credentials::parse("a:b:c").unwrap().password, "b:c");
        assert!(Credentials::parse("nocolon").is_err());
        assert!(Credentials::parse(":pw").is_err());
        assert!(!format!("{:?}", Credentials::parse("a:secret").unwrap()).contains("secret"));
    }
}

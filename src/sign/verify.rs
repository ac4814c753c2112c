//! Checking the signatures an OSTree commit carries in its detached metadata, against keys the
//! user names: a GPG keyring file, ed25519 public keys, or an OSTree remote's configured keys
//! (its GPG keyring, `verification-ed25519-key` / `verification-ed25519-file`).
//!
//! Verification passes when at least one signature of the commit is valid for one of the keys
//! given (as `ostree pull` with `gpg-verify` or `sign-verify` does); asked for and not passed,
//! it is an error.

use std::path::{Path, PathBuf};

use ostree::{Repo, gio, glib};

use super::ed25519;
use crate::error::{Error, Result};

/// Which keys to verify against. Empty: nothing is verified.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct VerifyOptions {
    /// GPG keyring files (binary or ASCII-armored public keys).
    pub gpg_keyrings: Vec<PathBuf>,
    /// ed25519 public keys: base64 of 32 bytes, or files of them.
    pub ed25519_keys: Vec<String>,
    /// An OSTree remote of the repository whose keys to use.
    pub remote: Option<String>,
}

impl VerifyOptions {
    /// No keys.
    pub fn new() -> Self {
        Self::default()
    }

    /// Whether verification was asked for.
    pub fn is_empty(&self) -> bool {
        self.gpg_keyrings.is_empty() && self.ed25519_keys.is_empty() && self.remote.is_none()
    }
}

/// One valid signature found.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Signer {
    /// `gpg` or `ed25519`.
    pub kind: &'static str,
    /// The GPG key fingerprint and user id, or the ed25519 public key (base64).
    pub who: String,
}

const GPG_KEY: &str = "ostree.gpgsigs";

fn signatures(detached: Option<&glib::Variant>, key: &str) -> Vec<Vec<u8>> {
    detached
        .map(|v| glib::VariantDict::new(Some(v)))
        .and_then(|d| d.lookup::<Vec<Vec<u8>>>(key).ok().flatten())
        .unwrap_or_default()
}

/// Verifies `commit` (its object bytes are what is signed) with `detached` (its detached
/// metadata) against `opts`; `what` names it in errors. Returns the valid signatures found.
///
/// # Errors
/// [`Error::Signature`] when verification was asked for and no signature is valid for the
/// keys given; a key that cannot be read is an error too.
pub fn verify_commit(
    repo: &Repo,
    what: &str,
    commit: &glib::Variant,
    detached: Option<&glib::Variant>,
    opts: &VerifyOptions,
) -> Result<Vec<Signer>> {
    if opts.is_empty() {
        return Ok(Vec::new());
    }
    let data = commit.data();
    let mut found = Vec::new();
    let gpg = signatures(detached, GPG_KEY);
    if !gpg.is_empty() && (!opts.gpg_keyrings.is_empty() || opts.remote.is_some()) {
        found.extend(gpg_signers(repo, data, &gpg, opts)?);
    }
    let ed = signatures(detached, ed25519::DETACHED_KEY);
    let mut keys = Vec::new();
    for k in &opts.ed25519_keys {
        keys.extend(ed25519_keys(k)?);
    }
    if let Some(remote) = &opts.remote {
        keys.extend(remote_ed25519_keys(repo, remote)?);
    }
    for key in &keys {
        if ed25519::verify_any(std::slice::from_ref(key), data, &ed) {
            found.push(Signer {
                kind: "ed25519",
                who: base64_of(key.as_bytes()),
            });
        }
    }
    if found.is_empty() {
        return Err(Error::Signature {
            what: what.to_string(),
            reason: format!(
                "no valid signature for the keys given ({} GPG and {} ed25519 signature(s) \
                 present)",
                gpg.len(),
                ed.len()
            ),
        });
    }
    Ok(found)
}

fn base64_of(b: &[u8]) -> String {
    use base64::Engine as _;
    base64::engine::general_purpose::STANDARD.encode(b)
}

/// A key given on the command line: base64 itself, or a file of keys.
fn ed25519_keys(k: &str) -> Result<Vec<ed25519_dalek::VerifyingKey>> {
    let path = std::path::Path::new(k);
    if path.is_file() {
        ed25519::public_keys(path)
    } else {
        ed25519::public_keys_from(k, Path::new("--verify-ed25519"))
    }
}

/// The ed25519 keys a remote of `repo` is configured with.
fn remote_ed25519_keys(repo: &Repo, remote: &str) -> Result<Vec<ed25519_dalek::VerifyingKey>> {
    let config = repo.copy_config();
    let group = format!("remote \"{remote}\"");
    if !config.has_group(&group) {
        return Err(Error::NotFound(format!(
            "remote {remote} in the repository"
        )));
    }
    let mut keys = Vec::new();
    if let Ok(k) = config.string(&group, "verification-ed25519-key") {
        keys.extend(ed25519::public_keys_from(k.as_str(), Path::new(&group))?);
    }
    if let Ok(f) = config.string(&group, "verification-ed25519-file") {
        keys.extend(ed25519::public_keys(Path::new(f.as_str()))?);
    }
    Ok(keys)
}

/// The valid GPG signatures among `sigs` (concatenated, as libostree reads them).
fn gpg_signers(
    repo: &Repo,
    data: &[u8],
    sigs: &[Vec<u8>],
    opts: &VerifyOptions,
) -> Result<Vec<Signer>> {
    let mut out = Vec::new();
    let all = glib::Bytes::from_owned(sigs.concat());
    let data = glib::Bytes::from(data);
    let mut check = |keyring: Option<&gio::File>, remote: Option<&str>| -> Result<()> {
        let result = match repo.gpg_verify_data(
            remote,
            &data,
            &all,
            gio::File::NONE,
            keyring,
            gio::Cancellable::NONE,
        ) {
            Ok(r) => r,
            // No key at all to check with: nothing valid.
            Err(_) => return Ok(()),
        };
        for i in 0..result.count_all() {
            let v = result.all(i);
            let valid = v.child_value(0).get::<bool>().unwrap_or(false);
            if valid {
                let fpr = v.child_value(5).get::<String>().unwrap_or_default();
                let user = v.child_value(10).get::<String>().unwrap_or_default();
                let email = v.child_value(11).get::<String>().unwrap_or_default();
                out.push(Signer {
                    kind: "gpg",
                    who: format!("{fpr} {user} <{email}>"),
                });
            }
        }
        Ok(())
    };
    for k in &opts.gpg_keyrings {
        let bytes =
            std::fs::read(k).map_err(Error::io(format!("reading GPG keyring {}", k.display())))?;
        // libostree reads keyring files as binary keyrings only.
        let binary = tempfile::NamedTempFile::new().map_err(Error::io("a temporary keyring"))?;
        std::fs::write(binary.path(), dearmor(&bytes).unwrap_or(bytes))
            .map_err(Error::io("a temporary keyring"))?;
        check(Some(&gio::File::for_path(binary.path())), None)?;
    }
    if let Some(r) = &opts.remote {
        check(None, Some(r))?;
    }
    Ok(out)
}

/// The signatures on commit `commit` of `repo`, whoever made them: GPG signatures by the
/// fingerprint of their key (and its user id, when a keyring of the system or a remote knows
/// it), ed25519 signatures by number (they name no key).
///
/// # Errors
/// libostree cannot read the commit or its detached metadata.
pub fn describe(repo: &Repo, commit: &str) -> Result<Vec<Signer>> {
    let (object, detached) = crate::repo::load_commit(repo, commit)?;
    let mut out = Vec::new();
    let gpg = signatures(detached.as_ref(), GPG_KEY);
    if !gpg.is_empty() {
        let all = glib::Bytes::from_owned(gpg.concat());
        if let Ok(result) = repo.gpg_verify_data(
            None,
            &glib::Bytes::from(object.data()),
            &all,
            gio::File::NONE,
            gio::File::NONE,
            gio::Cancellable::NONE,
        ) {
            for i in 0..result.count_all() {
                let v = result.all(i);
                let fpr = v.child_value(5).get::<String>().unwrap_or_default();
                let user = v.child_value(10).get::<String>().unwrap_or_default();
                // libostree says "[unknown name]" when no keyring here holds the key
                let who = match user.as_str() {
                    "" | "[unknown name]" => {
                        format!("{fpr} (its key is in no keyring known here: name unknown)")
                    }
                    _ => format!("{fpr} {user}"),
                };
                out.push(Signer { kind: "gpg", who });
            }
        }
    }
    let ed = signatures(detached.as_ref(), ed25519::DETACHED_KEY);
    if !ed.is_empty() {
        out.push(Signer {
            kind: "ed25519",
            who: format!("{} signature(s)", ed.len()),
        });
    }
    Ok(out)
}

/// The binary packets of an ASCII-armored OpenPGP block (RFC 4880 §6.2), every block of the
/// text concatenated; `None` when `text` is not armored.
fn dearmor(text: &[u8]) -> Option<Vec<u8>> {
    use base64::Engine as _;
    let text = std::str::from_utf8(text).ok()?;
    let mut out = Vec::new();
    let mut lines = text.lines().map(str::trim_end);
    let mut found = false;
    while let Some(line) = lines.next() {
        if !line.starts_with("-----BEGIN PGP ") {
            continue;
        }
        found = true;
        // armor headers, then a blank line
        for l in lines.by_ref() {
            if l.is_empty() {
                break;
            }
        }
        let mut b64 = String::new();
        for l in lines.by_ref() {
            if l.starts_with("-----END PGP ") || l.starts_with('=') {
                break;
            }
            b64.push_str(l.trim());
        }
        out.extend(base64::engine::general_purpose::STANDARD.decode(b64).ok()?);
    }
    found.then_some(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dearmor_reads_blocks_and_leaves_binary_alone() {
        let armored = b"-----BEGIN PGP PUBLIC KEY BLOCK-----\nComment: x\n\nAAEC\nAwQ=\n=abcd\n-----END PGP PUBLIC KEY BLOCK-----\n";
        assert_eq!(dearmor(armored), Some(vec![0, 1, 2, 3, 4]));
        assert_eq!(dearmor(&[0x99, 0x01, 0x0d]), None);
        assert_eq!(dearmor(b"plain text"), None);
    }
}

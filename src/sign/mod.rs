//! Signing what ocitree serves, in the two formats OSTree clients verify:
//!
//! - **GPG**, through libostree's own signing (gpgme): a commit's signatures go in its
//!   detached metadata (`ostree.gpgsigs`), the summary's in `summary.sig`. `ostree pull` with
//!   `gpg-verify=true` / `gpg-verify-summary=true` checks them.
//! - **ed25519**, written here ([`ed25519`]): libostree's format, which Debian 12's libostree
//!   (built without libsodium) cannot write itself.
//!
//! Signing adds signatures and keeps the ones already there; signing twice with the same key
//! changes nothing. [`crate::serve::summary`] keeps a served repository's summary current and
//! signed.

pub mod ed25519;
pub mod verify;

use std::path::PathBuf;

use ostree::glib::prelude::*;
use ostree::{Repo, gio, glib};

use crate::error::{Error, Result};

/// Which keys sign.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct SignOptions {
    /// GPG key ids (or fingerprints) to sign with.
    pub gpg_keys: Vec<String>,
    /// The GnuPG home directory holding them (default: gpg's own, `~/.gnupg`).
    pub gpg_homedir: Option<PathBuf>,
    /// ed25519 secret key files ([`ed25519::secret_keys`]).
    pub ed25519_key_files: Vec<PathBuf>,
}

impl SignOptions {
    /// No keys: nothing is signed.
    pub fn new() -> Self {
        Self::default()
    }

    /// Whether any key is named.
    pub fn is_empty(&self) -> bool {
        self.gpg_keys.is_empty() && self.ed25519_key_files.is_empty()
    }

    /// These keys with those of `given` in place of them, kind by kind: `given`'s GPG keys
    /// (with its home directory) replace these GPG keys when it names any, its ed25519 key
    /// files these key files when it names any; a kind `given` does not name is kept.
    pub fn replaced_by(&self, given: &SignOptions) -> SignOptions {
        let mut out = self.clone();
        if !given.gpg_keys.is_empty() {
            out.gpg_keys.clone_from(&given.gpg_keys);
            out.gpg_homedir.clone_from(&given.gpg_homedir);
        }
        if !given.ed25519_key_files.is_empty() {
            out.ed25519_key_files.clone_from(&given.ed25519_key_files);
        }
        out
    }

    /// For messages: `GPG KEY,KEY (homedir DIR); ed25519 FILE,FILE`, the kinds named.
    pub fn describe(&self) -> String {
        let mut parts = Vec::new();
        if !self.gpg_keys.is_empty() {
            let home = self
                .gpg_homedir
                .as_ref()
                .map(|h| format!(" (homedir {})", h.display()))
                .unwrap_or_default();
            parts.push(format!("GPG {}{home}", self.gpg_keys.join(",")));
        }
        if !self.ed25519_key_files.is_empty() {
            let files: Vec<String> = self
                .ed25519_key_files
                .iter()
                .map(|f| f.display().to_string())
                .collect();
            parts.push(format!("ed25519 {}", files.join(",")));
        }
        parts.join("; ")
    }

    pub(crate) fn homedir(&self) -> Option<String> {
        self.gpg_homedir
            .as_ref()
            .map(|p| p.to_string_lossy().into_owned())
    }
}

/// Checks that every key of `opts` can sign, without signing anything that is kept: each GPG
/// key signs a few bytes through the `gpg` that libostree's gpgme runs (so a missing key, a
/// wrong home directory, an expired key or one that needs a passphrase show here), each
/// ed25519 key file is read. A command that must sign after it has changed the repository
/// asks this first.
///
/// # Errors
/// [`Error::Signature`] naming the key and what gpg said; an unreadable key file.
pub fn check_usable(opts: &SignOptions) -> Result<()> {
    for file in &opts.ed25519_key_files {
        ed25519::secret_keys(file)?;
    }
    for key in &opts.gpg_keys {
        let mut gpg = std::process::Command::new("gpg");
        gpg.args(["--batch", "--no-tty", "--yes", "--local-user", key]);
        if let Some(h) = &opts.gpg_homedir {
            gpg.arg("--homedir").arg(h);
        }
        gpg.args(["--output", "/dev/null", "--detach-sign"])
            .stdin(std::process::Stdio::piped())
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::piped());
        let fail = |reason: String| Error::Signature {
            what: format!("GPG key {key}"),
            reason,
        };
        let mut child = gpg
            .spawn()
            .map_err(|e| fail(format!("cannot run gpg: {e}")))?;
        if let Some(mut stdin) = child.stdin.take() {
            use std::io::Write as _;
            let _ = stdin.write_all(b"ocitree: can this key sign?\n");
        }
        let out = child
            .wait_with_output()
            .map_err(|e| fail(format!("gpg: {e}")))?;
        if !out.status.success() {
            let said = String::from_utf8_lossy(&out.stderr);
            return Err(fail(format!(
                "it cannot sign (gpg: {})",
                said.trim().replace('\n', "; ")
            )));
        }
    }
    Ok(())
}

/// Signs commit `commit` with every key of `opts`.
///
/// # Errors
/// A key cannot be read or used (unknown GPG key, bad key file), or libostree fails.
pub fn sign_commit(repo: &Repo, commit: &str, opts: &SignOptions) -> Result<()> {
    for key in &opts.gpg_keys {
        if let Err(e) = repo.sign_commit(
            commit,
            key,
            opts.homedir().as_deref(),
            gio::Cancellable::NONE,
        ) {
            // Signed by this key already (a re-import): nothing to add.
            if !e.matches(gio::IOErrorEnum::Exists) {
                return Err(Error::ostree(format!(
                    "signing {commit} with GPG key {key}"
                ))(e));
            }
        }
    }
    if opts.ed25519_key_files.is_empty() {
        return Ok(());
    }
    let (object, detached) = crate::repo::load_commit(repo, commit)?;
    let mut signatures = Vec::new();
    for file in &opts.ed25519_key_files {
        for key in ed25519::secret_keys(file)? {
            signatures.push(ed25519::sign(&key, object.data()).to_vec());
        }
    }
    let dict = add_signatures(detached.as_ref(), ed25519::DETACHED_KEY, signatures);
    repo.write_commit_detached_metadata(commit, Some(&dict), gio::Cancellable::NONE)
        .map_err(Error::ostree(format!(
            "writing detached metadata of {commit}"
        )))
}

/// `existing` (an `a{sv}`, or nothing) with `signatures` added to the `aay` under `key`,
/// those already there kept and none twice.
pub(crate) fn add_signatures(
    existing: Option<&glib::Variant>,
    key: &str,
    signatures: Vec<Vec<u8>>,
) -> glib::Variant {
    let dict = glib::VariantDict::new(existing);
    let mut all: Vec<Vec<u8>> = dict.lookup(key).ok().flatten().unwrap_or_default();
    for s in signatures {
        if !all.contains(&s) {
            all.push(s);
        }
    }
    dict.insert_value(key, &all.to_variant());
    dict.end()
}

/// The ed25519 signatures in a detached metadata (or `summary.sig`) dictionary.
pub fn ed25519_signatures(detached: Option<&glib::Variant>) -> Vec<Vec<u8>> {
    detached
        .map(|v| glib::VariantDict::new(Some(v)))
        .and_then(|d| d.lookup(ed25519::DETACHED_KEY).ok().flatten())
        .unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn signatures_are_added_once_and_other_keys_kept() {
        let first = add_signatures(None, ed25519::DETACHED_KEY, vec![vec![1; 64]]);
        let d = glib::VariantDict::new(Some(&first));
        d.insert("ostree.gpgsigs", vec![vec![9u8; 3]]);
        let with_gpg = d.end();
        let again = add_signatures(
            Some(&with_gpg),
            ed25519::DETACHED_KEY,
            vec![vec![1; 64], vec![2; 64]],
        );
        assert_eq!(
            ed25519_signatures(Some(&again)),
            vec![vec![1u8; 64], vec![2; 64]]
        );
        let gpg: Vec<Vec<u8>> = glib::VariantDict::new(Some(&again))
            .lookup("ostree.gpgsigs")
            .unwrap()
            .unwrap();
        assert_eq!(gpg, vec![vec![9u8; 3]]);
    }
}

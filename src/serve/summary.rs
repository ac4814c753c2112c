//! The summary of a served repository (the list of refs `ostree pull` reads first), kept
//! current and signed.
//!
//! `ocitree summary --sign-by KEY` / `--sign-ed25519 FILE` signs the summary and remembers
//! the keys in the repository's `config` (group `ocitree`, keys `summary-gpg-keys`,
//! `summary-gpg-homedir`, `summary-ed25519-key-files`): every later `import`, `rm` and
//! `prune` regenerates the summary and signs it again with them ([`update`]). A summary that
//! was signed and has no configured key left is reported as [`SummaryStatus::NowUnsigned`],
//! never left with a stale signature (libostree drops `summary.sig` when it regenerates).

use std::path::{Path, PathBuf};

use ostree::gio::prelude::*;
use ostree::{Repo, RepoMode, gio, glib};

use crate::error::{Error, Result};
use crate::sign::{SignOptions, add_signatures, ed25519};

const GROUP: &str = "ocitree";
const GPG_KEYS: &str = "summary-gpg-keys";
const GPG_HOMEDIR: &str = "summary-gpg-homedir";
const ED25519_FILES: &str = "summary-ed25519-key-files";

/// What [`update`] left behind.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum SummaryStatus {
    /// The repository has no summary and is not an archive: nothing to serve.
    #[default]
    NotServed,
    /// Regenerated, unsigned (it was not signed before either).
    Unsigned,
    /// Regenerated and signed with the configured keys.
    Signed,
    /// Regenerated; it was signed, but no key is configured to sign it again.
    NowUnsigned,
    /// A flatpak remote ([`super::flatpak`]): `flatpak build-update-repo` could not be run
    /// (not on `PATH`), so flatpak's summary index is stale until the user runs it.
    FlatpakIndexStale,
}

fn repo_dir(repo: &Repo) -> PathBuf {
    repo.path().path().unwrap_or_else(|| PathBuf::from("."))
}

/// Whether the repository serves a summary: an `archive` repository, or any that has one.
pub fn served(repo: &Repo) -> bool {
    repo.mode() == RepoMode::Archive || repo_dir(repo).join("summary").exists()
}

/// The keys configured to sign the summary.
pub fn configured_keys(repo: &Repo) -> SignOptions {
    let config = repo.copy_config();
    let list = |key: &str| -> Vec<String> {
        config
            .string_list(GROUP, key)
            .map(|l| l.iter().map(|s| s.to_string()).collect())
            .unwrap_or_default()
    };
    SignOptions {
        gpg_keys: list(GPG_KEYS),
        gpg_homedir: config
            .string(GROUP, GPG_HOMEDIR)
            .ok()
            .map(|s| PathBuf::from(s.as_str())),
        ed25519_key_files: list(ED25519_FILES).into_iter().map(PathBuf::from).collect(),
    }
}

/// Remembers `keys` as the summary's signing keys (none: the summary is left unsigned).
/// Relative key file paths are made absolute first.
///
/// # Errors
/// The config cannot be written.
pub fn configure_keys(repo: &Repo, keys: &SignOptions) -> Result<()> {
    let config = repo.copy_config();
    let abs = |p: &Path| std::path::absolute(p).unwrap_or_else(|_| p.to_path_buf());
    for key in [GPG_KEYS, GPG_HOMEDIR, ED25519_FILES] {
        let _ = config.remove_key(GROUP, key);
    }
    // GKeyFile lists are `;`-separated, and glib-rs binds no list setter.
    let set_list = |key: &str, items: &[String]| -> Result<()> {
        if let Some(bad) = items.iter().find(|i| i.contains(';')) {
            return Err(Error::Invalid {
                what: format!("signing key {bad:?}"),
                reason: "a signing key or key file name cannot contain ';'".into(),
            });
        }
        if !items.is_empty() {
            config.set_string(GROUP, key, &format!("{};", items.join(";")));
        }
        Ok(())
    };
    set_list(GPG_KEYS, &keys.gpg_keys)?;
    if let Some(h) = &keys.gpg_homedir {
        config.set_string(GROUP, GPG_HOMEDIR, &abs(h).to_string_lossy());
    }
    let files: Vec<String> = keys
        .ed25519_key_files
        .iter()
        .map(|p| abs(p).to_string_lossy().into_owned())
        .collect();
    set_list(ED25519_FILES, &files)?;
    repo.write_config(&config)
        .map_err(Error::ostree("writing the repository config"))
}

/// Checks that the keys configured to sign the summary of a served repository can sign
/// ([`crate::sign::check_usable`]). `import`, `rm` and `prune` ask before they change
/// anything: after the change the summary must be signed again, and a key that cannot sign
/// would leave the command half done (changed, with an unsigned summary).
///
/// # Errors
/// A configured key cannot sign.
pub fn check_keys(repo: &Repo) -> Result<()> {
    if !served(repo) {
        return Ok(());
    }
    let keys = configured_keys(repo);
    crate::sign::check_usable(&keys).map_err(|e| match e {
        Error::Signature { what, reason } => Error::Signature {
            what: format!("the summary's signing key ({what}, set by `ocitree summary`)"),
            reason,
        },
        e => e,
    })
}

/// Regenerates the summary of a served repository (see [`served`]) and signs it with the
/// configured keys ([`configured_keys`]).
///
/// # Errors
/// libostree fails, or a configured key cannot be used.
pub fn update(repo: &Repo) -> Result<SummaryStatus> {
    if !served(repo) {
        return Ok(SummaryStatus::NotServed);
    }
    let dir = repo_dir(repo);
    let was_signed = dir.join("summary.sig").exists();
    if super::flatpak::is_flatpak_repo(&dir) {
        let keys = configured_keys(repo);
        // Signatures of the summary about to be replaced would be stale beside the new one.
        remove_if_exists(&dir.join("summary.sig"))?;
        if !super::flatpak::update_repo(&dir, &keys)? {
            return Ok(SummaryStatus::FlatpakIndexStale);
        }
        // flatpak signs with GPG only: ed25519 signatures are added beside.
        let ed25519 = SignOptions {
            ed25519_key_files: keys.ed25519_key_files.clone(),
            ..SignOptions::default()
        };
        sign(repo, &ed25519)?;
        return Ok(if !keys.is_empty() {
            SummaryStatus::Signed
        } else if was_signed {
            SummaryStatus::NowUnsigned
        } else {
            SummaryStatus::Unsigned
        });
    }
    repo.regenerate_summary(None, gio::Cancellable::NONE)
        .map_err(Error::ostree("updating the summary"))?;
    let keys = configured_keys(repo);
    if !keys.is_empty() {
        sign(repo, &keys)?;
        return Ok(SummaryStatus::Signed);
    }
    // libostree 2022.7 removes summary.sig when it regenerates; make sure of it.
    remove_if_exists(&dir.join("summary.sig"))?;
    Ok(if was_signed {
        SummaryStatus::NowUnsigned
    } else {
        SummaryStatus::Unsigned
    })
}

fn remove_if_exists(path: &Path) -> Result<()> {
    match std::fs::remove_file(path) {
        Err(e) if e.kind() != std::io::ErrorKind::NotFound => {
            Err(Error::io(format!("removing {}", path.display()))(e))
        }
        _ => Ok(()),
    }
}

/// Signs the current summary with `keys`, keeping signatures already in `summary.sig`.
///
/// # Errors
/// There is no summary, a key cannot be used, or writing fails.
pub fn sign(repo: &Repo, keys: &SignOptions) -> Result<()> {
    let dir = repo_dir(repo);
    if !keys.gpg_keys.is_empty() {
        let ids: Vec<&str> = keys.gpg_keys.iter().map(String::as_str).collect();
        repo.add_gpg_signature_summary(&ids, keys.homedir().as_deref(), gio::Cancellable::NONE)
            .map_err(Error::ostree("signing the summary with GPG"))?;
    }
    if keys.ed25519_key_files.is_empty() {
        return Ok(());
    }
    let summary_path = dir.join("summary");
    let summary = std::fs::read(&summary_path)
        .map_err(Error::io(format!("reading {}", summary_path.display())))?;
    let mut signatures = Vec::new();
    for file in &keys.ed25519_key_files {
        for key in ed25519::secret_keys(file)? {
            signatures.push(ed25519::sign(&key, &summary).to_vec());
        }
    }
    let sig_path = dir.join("summary.sig");
    let existing = match std::fs::read(&sig_path) {
        Ok(bytes) => Some(glib::Variant::from_data_with_type(
            bytes,
            glib::VariantTy::VARDICT,
        )),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => None,
        Err(e) => return Err(Error::io(format!("reading {}", sig_path.display()))(e)),
    };
    let merged = add_signatures(existing.as_ref(), ed25519::DETACHED_KEY, signatures);
    write_atomically(&sig_path, merged.data())
}

/// Writes `path` through a temporary file beside it, so a reader never sees half of it.
fn write_atomically(path: &Path, data: &[u8]) -> Result<()> {
    let dir = path.parent().unwrap_or(Path::new("."));
    let err = |e| Error::io(format!("writing {}", path.display()))(e);
    let tmp = tempfile::NamedTempFile::new_in(dir).map_err(err)?;
    std::fs::write(tmp.path(), data).map_err(err)?;
    let file = tmp.persist(path).map_err(|e| err(e.error))?;
    use std::os::unix::fs::PermissionsExt as _;
    file.set_permissions(std::fs::Permissions::from_mode(0o644))
        .map_err(Error::io(format!("writing {}", path.display())))
}

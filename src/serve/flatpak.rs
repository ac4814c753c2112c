//! Keeping a flatpak remote current. `flatpak build-update-repo REPO` writes a summary with
//! flatpak's own metadata (`xa.cache`: each ref's `metadata` file and sizes) and an indexed
//! summary (`summary.idx`, `summaries/`), which flatpak clients read instead of `summary`.
//! libostree's summary regeneration knows neither: after an ocitree change the index would
//! still list refs that are gone and miss new ones. So on a repository that has a
//! `summary.idx`, ocitree runs `flatpak build-update-repo` again ([`update_repo`]), signing with
//! the configured GPG keys as flatpak does; without `flatpak` on `PATH` it says so
//! ([`super::summary::SummaryStatus::FlatpakIndexStale`]).

use std::path::Path;
use std::process::Command;

use crate::error::{Error, Result};
use crate::sign::SignOptions;

/// Whether `flatpak build-update-repo` has indexed the repository at `dir`.
pub fn is_flatpak_repo(dir: &Path) -> bool {
    dir.join("summary.idx").exists()
}

/// Runs `flatpak build-update-repo` on the repository at `dir`, GPG-signing with `keys`'
/// GPG keys. `Ok(false)` when `flatpak` is not on `PATH`.
///
/// # Errors
/// flatpak fails (its standard error is in the message).
pub fn update_repo(dir: &Path, keys: &SignOptions) -> Result<bool> {
    let mut cmd = Command::new("flatpak");
    cmd.arg("build-update-repo");
    for key in &keys.gpg_keys {
        cmd.arg(format!("--gpg-sign={key}"));
    }
    if let (false, Some(home)) = (keys.gpg_keys.is_empty(), keys.homedir()) {
        cmd.arg(format!("--gpg-homedir={home}"));
    }
    cmd.arg(dir);
    let context = format!("running flatpak build-update-repo {}", dir.display());
    let out = match cmd.output() {
        Ok(out) => out,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(false),
        Err(e) => return Err(Error::io(context)(e)),
    };
    if !out.status.success() {
        let reason = String::from_utf8_lossy(&out.stderr).trim().to_string();
        return Err(Error::io(context)(std::io::Error::other(reason)));
    }
    Ok(true)
}

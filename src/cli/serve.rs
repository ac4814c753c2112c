//! `ocitree sign`, `summary` and `delta`: what a served repository offers `ostree pull`
//! clients; and the signing flags other commands share.

use std::path::{Path, PathBuf};

use anyhow::{Context, Result};
use clap::Args;
use ocitree::image::ImageInfo;
use ocitree::serve::delta::{self, DeltaFrom};
use ocitree::serve::summary::{self, SummaryStatus};
use ocitree::sign::{self, SignOptions};

/// Keys to sign with: GPG (libostree's signing, what `ostree pull` with gpg-verify checks)
/// and ed25519 (libostree's format).
#[derive(Debug, Args, Default)]
pub struct SignArgs {
    /// Sign with this GPG key id or fingerprint (repeatable).
    #[arg(long = "sign-by", value_name = "KEYID")]
    pub gpg_keys: Vec<String>,
    /// GnuPG home directory holding the signing keys (default: gpg's, ~/.gnupg).
    #[arg(long, value_name = "DIR")]
    pub gpg_homedir: Option<PathBuf>,
    /// Sign with the ed25519 secret keys in this file, as `ostree sign --keys-file` reads them:
    /// base64 of the 64-byte secret key, one a line (repeatable).
    #[arg(long = "sign-ed25519", value_name = "KEYFILE")]
    pub ed25519_key_files: Vec<PathBuf>,
}

impl SignArgs {
    /// The library's options.
    pub fn options(&self) -> SignOptions {
        let mut o = SignOptions::new();
        o.gpg_keys.clone_from(&self.gpg_keys);
        o.gpg_homedir.clone_from(&self.gpg_homedir);
        o.ed25519_key_files.clone_from(&self.ed25519_key_files);
        o
    }
}

/// Sign an image's commit (GPG and/or ed25519); signatures already there are kept.
///
/// The commit is the one `ocitree/image/NAME` points at, so clients that pull that ref with
/// signature verification on accept it. Re-signing with the same key changes nothing.
#[derive(Debug, Args)]
pub struct SignCommitArgs {
    /// Image name.
    name: String,
    #[command(flatten)]
    keys: SignArgs,
}

/// Regenerate the repository summary (the refs `ostree pull` reads first) and sign it.
///
/// The keys given are remembered in the repository's config: every later import, rm and prune
/// regenerates the summary and signs it again with them. Keys given replace the remembered
/// keys of their kind (--sign-by the GPG keys, --sign-ed25519 the ed25519 key files); the
/// other kind stays. Without keys, the summary is signed with the remembered keys, if any;
/// --unsigned forgets them all. The keys that signed are printed.
#[derive(Debug, Args)]
pub struct SummaryArgs {
    #[command(flatten)]
    keys: SignArgs,
    /// Forget the remembered keys: the summary is left unsigned from now on.
    #[arg(long, conflicts_with_all = ["gpg_keys", "ed25519_key_files"])]
    unsigned: bool,
}

pub fn sign_commit(repo_path: &Path, a: SignCommitArgs) -> Result<()> {
    let repo = ocitree::repo::open(repo_path)?;
    let opts = a.keys.options();
    anyhow::ensure!(
        !opts.is_empty(),
        "nothing to sign with: give --sign-by KEYID or --sign-ed25519 KEYFILE"
    );
    let info = ImageInfo::load(&repo, &a.name)?;
    sign::sign_commit(&repo, &info.commit, &opts)
        .with_context(|| format!("signing image {}", a.name))?;
    out!("Signed:   {} ({})", a.name, info.commit);
    report_summary(summary::update(&repo)?)
}

pub fn summary(repo_path: &Path, a: SummaryArgs) -> Result<()> {
    let repo = ocitree::repo::open(repo_path)?;
    let given = a.keys.options();
    if a.unsigned {
        summary::configure_keys(&repo, &SignOptions::new())?;
    } else if !given.is_empty() {
        let keys = summary::configured_keys(&repo).replaced_by(&given);
        summary::configure_keys(&repo, &keys)?;
    }
    // Served from now on, even a bare-user repository that had no summary yet.
    if !summary::served(&repo) {
        repo.regenerate_summary(None, ocitree::gio::Cancellable::NONE)
            .context("writing the summary")?;
    }
    match summary::update(&repo)? {
        SummaryStatus::NowUnsigned if a.unsigned => report_summary(SummaryStatus::Unsigned),
        SummaryStatus::Signed => {
            report_summary(SummaryStatus::Signed)?;
            out!("Keys:     {}", summary::configured_keys(&repo).describe());
            Ok(())
        }
        status => report_summary(status),
    }
}

/// Says what became of the summary; a summary that lost its signature is a warning.
pub fn report_summary(status: SummaryStatus) -> Result<()> {
    match status {
        SummaryStatus::NotServed => {}
        SummaryStatus::Signed => out!("Summary:  regenerated, signed"),
        SummaryStatus::Unsigned => out!("Summary:  regenerated, unsigned"),
        SummaryStatus::NowUnsigned => warn_if_unsigned(status),
        SummaryStatus::FlatpakIndexStale => warn_if_unsigned(status),
    }
    Ok(())
}

/// Warns (on standard error) when the summary lost its signature, or flatpak's summary
/// index could not be brought up to date.
pub fn warn_if_unsigned(status: SummaryStatus) {
    if status == SummaryStatus::FlatpakIndexStale {
        eprintln!(
            "warning: this is a flatpak remote and `flatpak` is not on PATH: its summary index \
             (summary.idx) is stale until you run `flatpak build-update-repo` on the repository"
        );
    }
    if status == SummaryStatus::NowUnsigned {
        eprintln!(
            "warning: the summary was signed and is now unsigned: no signing key is configured \
             (sign it with `ocitree summary --sign-by KEYID` or `--sign-ed25519 KEYFILE`)"
        );
    }
}

/// Generate a static delta to an image's commit (libostree's generator), listed in the summary.
///
/// Clients that have the old commit then fetch one delta instead of every changed object
/// (`ostree pull` uses it by itself). `prune` drops a delta once its target commit is gone.
#[derive(Debug, Args)]
#[command(group(clap::ArgGroup::new("start").required(true)))]
pub struct DeltaArgs {
    /// Image name: the delta goes to its commit.
    name: String,
    /// Start from this commit, ref or image name.
    #[arg(long, value_name = "REV", group = "start")]
    from: Option<String>,
    /// Start from the commit the image pointed at before its last import.
    #[arg(long, group = "start")]
    from_previous: bool,
    /// A from-scratch delta: the whole commit in one delta.
    #[arg(long, group = "start")]
    scratch: bool,
}

pub fn delta(repo_path: &Path, a: DeltaArgs) -> Result<()> {
    let repo = ocitree::repo::open(repo_path)?;
    let from = match (a.from, a.from_previous) {
        (Some(r), _) => DeltaFrom::Rev(r),
        (None, true) => DeltaFrom::Previous,
        (None, false) => DeltaFrom::Scratch,
    };
    let name = delta::generate(&repo, &a.name, &from)
        .with_context(|| format!("making a static delta to image {}", a.name))?;
    out!("Delta:    {name}");
    report_summary(summary::update(&repo)?)
}

//! `ocitree ls`, `cat` and `checkout`: reading an image's tree.

use std::io::Write;
use std::path::{Path, PathBuf};

use anyhow::Result;
use clap::Args;

/// List a path of an image's tree, like `ostree ls`.
///
/// Each line: type and mode, uid, gid, size, absolute path, and the target of symlinks.
#[derive(Debug, Args)]
pub struct LsArgs {
    /// Image name.
    name: String,
    /// Path inside the image.
    #[arg(default_value = "/")]
    path: String,
    /// List directories recursively.
    #[arg(short = 'R', long)]
    recursive: bool,
}

/// Print a file of an image to standard output.
#[derive(Debug, Args)]
pub struct CatArgs {
    /// Image name.
    name: String,
    /// Path of a regular file inside the image.
    path: String,
}

/// Check an image out to a new directory (user mode: files belong to you), as copies of the repository's files.
#[derive(Debug, Args)]
pub struct CheckoutArgs {
    /// Image name.
    name: String,
    /// Destination directory; must not exist.
    dest: PathBuf,
    /// Hardlink files to the repository's objects instead of copying them: fast and takes no space, but for reading only — editing such a file in place changes the object and corrupts the repository.
    #[arg(long)]
    hardlink: bool,
}

pub fn ls(repo: &Path, a: LsArgs) -> Result<()> {
    let repo = ocitree::repo::open(repo)?;
    let mut out = std::io::stdout().lock();
    ocitree::browse::ls(&repo, &a.name, &a.path, a.recursive, &mut out)?;
    out.flush()?;
    Ok(())
}

pub fn cat(repo: &Path, a: CatArgs) -> Result<()> {
    let repo = ocitree::repo::open(repo)?;
    let mut out = std::io::stdout().lock();
    ocitree::browse::cat(&repo, &a.name, &a.path, &mut out)?;
    out.flush()?;
    Ok(())
}

pub fn checkout(repo: &Path, a: CheckoutArgs) -> Result<()> {
    let repo = ocitree::repo::open(repo)?;
    ocitree::browse::checkout(&repo, &a.name, &a.dest, a.hardlink)?;
    out!("Checked out {} to {}", a.name, a.dest.display());
    Ok(())
}

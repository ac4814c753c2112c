//! Reading an image's tree without a checkout: listing (`ls`), file contents (`cat`) and a
//! user-mode checkout.

use std::io::Write;
use std::path::Path;

use ostree::gio::prelude::*;
use ostree::{Repo, RepoCheckoutAtOptions, RepoCheckoutMode, gio};

use crate::error::{Error, Result};
use crate::image::refs;

const ATTRS: &str = "standard::name,standard::type,standard::size,standard::symlink-target,unix::mode,unix::uid,unix::gid";

fn open_path(repo: &Repo, name: &str, path: &str) -> Result<(gio::File, gio::FileInfo)> {
    let commit = refs::image_commit(repo, name)?;
    let (root, _) = repo
        .read_commit(&commit, gio::Cancellable::NONE)
        .map_err(Error::ostree(format!("reading {name}")))?;
    let rel = path.trim_start_matches('/');
    let f = if rel.is_empty() {
        root
    } else {
        root.resolve_relative_path(rel)
    };
    let info = f
        .query_info(
            ATTRS,
            gio::FileQueryInfoFlags::NOFOLLOW_SYMLINKS,
            gio::Cancellable::NONE,
        )
        .map_err(|_| Error::NotFound(format!("{name}: path {path}")))?;
    Ok((f, info))
}

fn line(info: &gio::FileInfo, path: &str) -> String {
    let t = match info.file_type() {
        gio::FileType::Directory => 'd',
        gio::FileType::SymbolicLink => 'l',
        _ => '-',
    };
    let mode = info.attribute_uint32("unix::mode") & 0o7777;
    let mut s = format!(
        "{t}0{mode:04o} {} {} {:6} {path}",
        info.attribute_uint32("unix::uid"),
        info.attribute_uint32("unix::gid"),
        info.size()
    );
    if let Some(target) = info.symlink_target() {
        s.push_str(&format!(" -> {}", target.display()));
    }
    s
}

fn list_into(f: &gio::File, path: &str, recursive: bool, out: &mut dyn Write) -> Result<()> {
    let e = f
        .enumerate_children(
            ATTRS,
            gio::FileQueryInfoFlags::NOFOLLOW_SYMLINKS,
            gio::Cancellable::NONE,
        )
        .map_err(Error::ostree(format!("listing {path}")))?;
    while let Some(info) = e
        .next_file(gio::Cancellable::NONE)
        .map_err(Error::ostree(format!("listing {path}")))?
    {
        let child_path = format!("{}/{}", path.trim_end_matches('/'), info.name().display());
        writeln!(out, "{}", line(&info, &child_path)).map_err(Error::io("writing output"))?;
        if recursive && info.file_type() == gio::FileType::Directory {
            list_into(&f.child(info.name()), &child_path, true, out)?;
        }
    }
    Ok(())
}

/// Writes an `ostree ls`-style listing of `path` in image `name`: the entry itself, then (for a
/// directory) its children, recursively when `recursive`.
///
/// # Errors
/// [`Error::NotFound`] for a missing image or path.
pub fn ls(repo: &Repo, name: &str, path: &str, recursive: bool, out: &mut dyn Write) -> Result<()> {
    let (f, info) = open_path(repo, name, path)?;
    let abs = format!("/{}", path.trim_matches('/'));
    writeln!(out, "{}", line(&info, &abs)).map_err(Error::io("writing output"))?;
    if info.file_type() == gio::FileType::Directory {
        list_into(&f, &abs, recursive, out)?;
    }
    Ok(())
}

/// Copies the regular file at `path` in image `name` to `out`.
///
/// # Errors
/// [`Error::NotFound`] for a missing image or path; [`Error::InvalidReference`] when the path
/// is not a regular file.
pub fn cat(repo: &Repo, name: &str, path: &str, out: &mut dyn Write) -> Result<()> {
    let (f, info) = open_path(repo, name, path)?;
    if info.file_type() != gio::FileType::Regular {
        return Err(Error::Invalid {
            what: format!("path {path} of image {name}"),
            reason: "not a regular file".into(),
        });
    }
    // RepoFile::read() hands out a plain GInputStream, which gio-rs' File::read() rejects:
    // load the content object by checksum instead.
    let csum = f
        .downcast_ref::<ostree::RepoFile>()
        .expect("files of a commit are RepoFiles")
        .checksum();
    let (input, _, _) = repo
        .load_file(&csum, gio::Cancellable::NONE)
        .map_err(Error::ostree(format!("reading {path}")))?;
    if let Some(input) = input {
        std::io::copy(&mut input.into_read(), out).map_err(Error::io(format!("copying {path}")))?;
    }
    Ok(())
}

/// Checks image `name` out to `dest` (which must not exist) in user mode: files belong to the
/// caller. They are copies, unless `hardlink` asks for hardlinks to the repository's objects
/// where its mode allows (fast, and no space used, but a file edited in place then changes the
/// object itself and corrupts the repository: for reading only).
///
/// # Errors
/// [`Error::NotFound`] for a missing image; libostree failures (such as an existing `dest`).
pub fn checkout(repo: &Repo, name: &str, dest: &Path, hardlink: bool) -> Result<()> {
    let commit = refs::image_commit(repo, name)?;
    if dest.exists() {
        return Err(Error::Io {
            context: format!("checking out {name} to {}", dest.display()),
            cause: std::io::Error::new(std::io::ErrorKind::AlreadyExists, "destination exists"),
        });
    }
    let opts = RepoCheckoutAtOptions {
        mode: RepoCheckoutMode::User,
        force_copy: !hardlink,
        ..Default::default()
    };
    repo.checkout_at(
        Some(&opts),
        libc::AT_FDCWD,
        dest,
        &commit,
        gio::Cancellable::NONE,
    )
    .map_err(Error::ostree(format!(
        "checking out {name} to {}",
        dest.display()
    )))
}

//! Writes file, symlink and dirmeta objects into the repo while the tar streams by.
//!
//! Regular files go straight from the tar stream into libostree: small ones (up to
//! [`INLINE_MAX`]) through one `write_regfile_inline` call, larger ones through a streaming
//! `write_regfile` [`ostree::ContentWriter`]. libostree 2022.7 cannot stream `write_regfile` into
//! an `archive` repo, so there a large file is spooled to a temporary file in the repo's `tmp/`
//! and handed to `write_content` as a content stream. Memory never depends on file size.

use std::collections::HashMap;
use std::io::{self, Read, Write};

use ostree::gio::prelude::*;
use ostree::{ObjectType, Repo, RepoMode, gio, glib};

use crate::entries::{Entry, Xattrs, xattrs};
use crate::error::LayerError;

/// Files up to this size are buffered and written in one call.
pub const INLINE_MAX: u64 = 1 << 20;

const S_IFREG: u32 = 0o100000;
const S_IFDIR: u32 = 0o040000;

/// Ownership, mode and xattrs of a directory: the key of a dirmeta object.
type DirMetaKey = (u32, u32, u32, Xattrs);

/// Object writer for one layer, caching dirmeta checksums.
#[derive(Debug)]
pub struct ObjectWriter<'r> {
    repo: &'r Repo,
    archive: bool,
    dirmeta: HashMap<DirMetaKey, String>,
    buf: Vec<u8>,
}

fn ostree_err<'a>(
    path: &'a [String],
    op: &'static str,
) -> impl FnOnce(glib::Error) -> LayerError + 'a {
    move |cause| LayerError::Ostree {
        path: path.join("/"),
        op,
        cause,
    }
}

fn short_read(entry: &Entry, got: u64) -> LayerError {
    LayerError::Read(io::Error::new(
        io::ErrorKind::UnexpectedEof,
        format!(
            "entry {:?}: tar stream ends after {got} of {} bytes",
            entry.raw_path, entry.size
        ),
    ))
}

impl<'r> ObjectWriter<'r> {
    /// A writer for `repo` (which must be in a transaction).
    pub fn new(repo: &'r Repo) -> Self {
        let archive = matches!(repo.mode(), RepoMode::Archive);
        ObjectWriter {
            repo,
            archive,
            dirmeta: HashMap::new(),
            buf: Vec::new(),
        }
    }

    fn xattrs_variant(x: &Xattrs) -> Option<glib::Variant> {
        (!x.is_empty()).then(|| xattrs::to_variant(x))
    }

    /// Writes a regular file whose `entry.size` bytes come from `data`; returns its checksum.
    ///
    /// # Errors
    /// The stream is short, or libostree fails.
    pub fn file(&mut self, entry: &Entry, data: &mut dyn Read) -> Result<String, LayerError> {
        let xattrs = Self::xattrs_variant(&entry.xattrs);
        let mode = S_IFREG | entry.mode;
        if entry.size <= INLINE_MAX {
            self.buf.clear();
            let got = data
                .take(entry.size)
                .read_to_end(&mut self.buf)
                .map_err(LayerError::Read)? as u64;
            if got != entry.size {
                return Err(short_read(entry, got));
            }
            let csum = self
                .repo
                .write_regfile_inline(
                    None,
                    entry.uid,
                    entry.gid,
                    mode,
                    xattrs.as_ref(),
                    &self.buf,
                    gio::Cancellable::NONE,
                )
                .map_err(ostree_err(&entry.path, "writing file"))?;
            return Ok(csum.to_string());
        }
        if self.archive {
            return self.file_via_spool(entry, data, xattrs.as_ref());
        }
        let writer = self
            .repo
            .write_regfile(
                None,
                entry.uid,
                entry.gid,
                mode,
                entry.size,
                xattrs.as_ref(),
            )
            .map_err(ostree_err(&entry.path, "opening file object"))?;
        let mut out = writer.clone().upcast::<gio::OutputStream>().into_write();
        let got = io::copy(&mut data.take(entry.size), &mut out).map_err(LayerError::Read)?;
        if got != entry.size {
            return Err(short_read(entry, got));
        }
        out.flush().map_err(LayerError::Read)?;
        let csum = writer
            .finish(gio::Cancellable::NONE)
            .map_err(ostree_err(&entry.path, "writing file"))?;
        Ok(csum.to_string())
    }

    fn file_via_spool(
        &mut self,
        entry: &Entry,
        data: &mut dyn Read,
        xattrs: Option<&glib::Variant>,
    ) -> Result<String, LayerError> {
        let tmpdir = self
            .repo
            .path()
            .path()
            .map(|p| p.join("tmp"))
            .unwrap_or_else(std::env::temp_dir);
        let io_err = |e: io::Error| {
            LayerError::Read(io::Error::new(
                e.kind(),
                format!("spooling {:?}: {e}", entry.raw_path),
            ))
        };
        let mut spool = tempfile::tempfile_in(&tmpdir).map_err(io_err)?;
        let got = io::copy(&mut data.take(entry.size), &mut spool).map_err(LayerError::Read)?;
        if got != entry.size {
            return Err(short_read(entry, got));
        }
        io::Seek::rewind(&mut spool).map_err(io_err)?;
        let input = gio::ReadInputStream::new(spool);
        let info = gio::FileInfo::new();
        info.set_file_type(gio::FileType::Regular);
        info.set_size(entry.size as i64);
        info.set_attribute_uint32("unix::uid", entry.uid);
        info.set_attribute_uint32("unix::gid", entry.gid);
        info.set_attribute_uint32("unix::mode", S_IFREG | entry.mode);
        let (stream, len) =
            ostree::raw_file_to_content_stream(&input, &info, xattrs, gio::Cancellable::NONE)
                .map_err(ostree_err(&entry.path, "preparing file object"))?;
        let csum = self
            .repo
            .write_content(None, &stream, len, gio::Cancellable::NONE)
            .map_err(ostree_err(&entry.path, "writing file"))?;
        Ok(csum.to_hex())
    }

    /// Writes a symlink object; returns its checksum.
    ///
    /// # Errors
    /// libostree fails.
    pub fn symlink(&mut self, entry: &Entry, target: &str) -> Result<String, LayerError> {
        let xattrs = Self::xattrs_variant(&entry.xattrs);
        let csum = self
            .repo
            .write_symlink(
                None,
                entry.uid,
                entry.gid,
                xattrs.as_ref(),
                target,
                gio::Cancellable::NONE,
            )
            .map_err(ostree_err(&entry.path, "writing symlink"))?;
        Ok(csum.to_string())
    }

    /// Writes (once per distinct value) a dirmeta object; returns its checksum.
    ///
    /// # Errors
    /// libostree fails.
    pub fn dirmeta(
        &mut self,
        uid: u32,
        gid: u32,
        mode: u32,
        xattrs: &Xattrs,
    ) -> Result<String, LayerError> {
        let key = (uid, gid, mode & 0o7777, xattrs.clone());
        if let Some(c) = self.dirmeta.get(&key) {
            return Ok(c.clone());
        }
        let csum = write_dirmeta(self.repo, uid, gid, mode, xattrs).map_err(|cause| {
            LayerError::Ostree {
                path: String::new(),
                op: "writing dirmeta",
                cause,
            }
        })?;
        self.dirmeta.insert(key, csum.clone());
        Ok(csum)
    }
}

/// Writes a dirmeta object for the given ownership and permission bits.
///
/// # Errors
/// libostree fails.
pub fn write_dirmeta(
    repo: &Repo,
    uid: u32,
    gid: u32,
    mode: u32,
    xattrs: &Xattrs,
) -> Result<String, glib::Error> {
    let info = gio::FileInfo::new();
    info.set_file_type(gio::FileType::Directory);
    info.set_attribute_uint32("unix::uid", uid);
    info.set_attribute_uint32("unix::gid", gid);
    info.set_attribute_uint32("unix::mode", S_IFDIR | (mode & 0o7777));
    let xv = xattrs::to_variant(xattrs);
    let v = ostree::create_directory_metadata(&info, Some(&xv));
    Ok(repo
        .write_metadata(ObjectType::DirMeta, None, &v, gio::Cancellable::NONE)?
        .to_hex())
}

/// The dirmeta of a directory no tar entry described: `0755 root:root`, as umoci and
/// containerd create missing parents.
///
/// # Errors
/// libostree fails.
pub fn default_dirmeta(repo: &Repo) -> Result<String, glib::Error> {
    write_dirmeta(repo, 0, 0, 0o755, &Xattrs::new())
}

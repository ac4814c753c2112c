//! File objects of an `archive` repository, compressed by ocitree on every writer thread.
//!
//! libostree 2022.7 compresses each archive object with GLib's zlib converter on the thread
//! that writes it, and that was most of an import into an archive repository (Debian bench
//! image: 3.5 s against 0.94 s into bare-user). Here the writer threads (one per core) build
//! the `.filez` object themselves, exactly as libostree lays it out
//! (`_ostree_zlib_file_header_new` and a raw deflate stream of the content, at the
//! repository's `core.zlib-level`, default 6, made by libdeflate: an object here is buffered
//! whole, at most [`super::writer::INLINE_MAX`] bytes, and libdeflate deflates a buffer 2 to
//! 3 times faster than zlib at the same level). A larger file is deflated as it streams by,
//! in blocks on every core ([`crate::par_deflate`]), while its checksum is computed; a 200 MB
//! binary went from 8.4 s (libostree: zlib and GLib's software SHA-256 on one core) to 2.0 s
//! on two. Both are stored where libostree stores the
//! objects of the running transaction: its staging directory, `REPO/tmp/staging-…/XX/REST.filez`,
//! which committing the transaction renames into `objects/` (after one `syncfs`), and
//! aborting leaves out of the repository. The object checksum is the one libostree computes
//! over the uncompressed object ([`super::object::content_checksum`]), so commits are the same;
//! only the deflate bytes may differ (any raw deflate stream inflates to the same content,
//! and `ostree fsck` checks every object that way).
//!
//! The staging directory is the one whose lock file this process holds open (libostree keeps
//! that descriptor for the whole transaction). When it cannot be told (no transaction, or two
//! in this process), [`ArchiveStore::find`] gives `None` and libostree writes the objects.
//! libostree's free-space reserve (`core.min-free-space-size`, else
//! `core.min-free-space-percent`, 3 % unless set) holds for these objects as for its own: an
//! object that would leave less free is not stored (a large one is checked every 32 MiB as
//! it is written, so it stops at the reserve, not on a full disk), and the import fails
//! naming the setting, leaving the repository as it was.

use std::io::{self, Read, Write};
use std::path::{Path, PathBuf};

use ostree::gio::prelude::*;
use ostree::{Repo, RepoMode, glib};
use sha2::Digest as _;

use crate::entries::Entry;
use crate::error::LayerError;
use crate::layer::object::{FileObject, content_hasher, short_read};
use crate::par_deflate::{self, RawDeflate};

/// libostree's compression level for archive objects when `core.zlib-level` is not set
/// (`OSTREE_ARCHIVE_DEFAULT_COMPRESSION_LEVEL`).
pub const DEFAULT_LEVEL: u32 = 6;

/// A writer thread's deflate state.
pub type Compressor = libdeflater::Compressor;

/// Where and how the archive objects of the running transaction are written.
#[derive(Clone, Debug)]
pub struct ArchiveStore {
    objects: PathBuf,
    staging: PathBuf,
    level: u32,
    /// Bytes the file system must keep free (libostree's `min-free-space`); 0 for none.
    reserve: u64,
}

/// The compression level `repo` is configured with (`core.zlib-level`, 1 to 9 as libostree
/// accepts), else [`DEFAULT_LEVEL`].
pub fn zlib_level(repo: &Repo) -> u32 {
    repo.copy_config()
        .integer("core", "zlib-level")
        .ok()
        .and_then(|l| u32::try_from(l).ok())
        .filter(|l| (1..=9).contains(l))
        .unwrap_or(DEFAULT_LEVEL)
}

impl ArchiveStore {
    /// The store of `repo`'s running transaction; `None` when `repo` is not an archive
    /// repository or the transaction's staging directory cannot be told.
    pub fn find(repo: &Repo) -> Option<ArchiveStore> {
        if repo.mode() != RepoMode::Archive {
            return None;
        }
        let dir = repo.path().path()?.canonicalize().ok()?;
        let staging = held_staging_dir(&dir.join("tmp"))?;
        Some(ArchiveStore {
            objects: dir.join("objects"),
            staging,
            level: zlib_level(repo),
            reserve: repo.min_free_space_bytes().unwrap_or(0),
        })
    }

    /// A compressor at the repository's level, for one writer thread (its state is reused
    /// from object to object).
    pub fn compressor(&self) -> Compressor {
        let level = libdeflater::CompressionLvl::new(self.level as i32).unwrap_or_default();
        Compressor::new(level)
    }

    /// Writes `job` as a compressed archive object with `z` (from [`ArchiveStore::compressor`]),
    /// unless the repository or the transaction has it already.
    ///
    /// # Errors
    /// Writing the staging directory fails.
    pub fn write(&self, z: &mut Compressor, job: &FileObject) -> Result<(), LayerError> {
        let err = |e: io::Error| write_error(&job.csum, &job.path, e);
        if self.has(&job.csum) {
            return Ok(());
        }
        let mut tmp = self.temp_object().map_err(err)?;
        let head = header(
            job.data.len() as u64,
            job.uid,
            job.gid,
            job.mode,
            &job.xattrs,
        );
        let object = compress(z, head, &job.data).map_err(err)?;
        tmp.write_all(&object).map_err(err)?;
        self.persist(tmp, &job.csum).map_err(err)
    }

    /// Writes `entry`'s `entry.size` bytes from `data` as a compressed archive object (`mode`
    /// with the file type bits, `xattrs` as `a(ayay)`), deflated on every core while its
    /// checksum is computed; returns the checksum. Memory does not depend on the size.
    ///
    /// # Errors
    /// The stream is short or fails, or writing the staging directory fails.
    pub fn write_stream(
        &self,
        entry: &Entry,
        mode: u32,
        xattrs: &glib::Variant,
        data: &mut dyn Read,
    ) -> Result<String, LayerError> {
        let path = entry.path.join("/");
        let err = |e: io::Error| write_error("(streaming)", &path, e);
        let mut tmp = self.temp_object().map_err(err)?;
        tmp.write_all(&header(entry.size, entry.uid, entry.gid, mode, xattrs))
            .map_err(err)?;
        let mut hasher = content_hasher(entry.uid, entry.gid, mode, xattrs);
        let mut src = data.take(entry.size);
        let mut read_failed = None;
        let level = self.level;
        // A large object keeps the reserve while it is written, not only once it is.
        let out = ReserveKept {
            store: self,
            out: tmp.as_file_mut(),
            unchecked: 0,
        };
        let copied = par_deflate::deflate_into::<RawDeflate, _, _>(
            out,
            level,
            par_deflate::threads(),
            |out| {
                let mut buf = vec![0u8; par_deflate::BLOCK];
                let mut got = 0u64;
                loop {
                    let n = match src.read(&mut buf) {
                        Ok(0) => return Ok(got),
                        Ok(n) => n,
                        Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                        Err(e) => {
                            // The layer's error, not the object's: passed on as it is.
                            read_failed = Some(e);
                            return Err(io::Error::other("layer read failed"));
                        }
                    };
                    hasher.update(&buf[..n]);
                    out.write_all(&buf[..n])?;
                    got += n as u64;
                }
            },
        );
        if let Some(e) = read_failed {
            return Err(LayerError::Read(e));
        }
        let got = copied.map_err(err)?;
        if got != entry.size {
            return Err(short_read(entry, got));
        }
        let csum = hex::encode(hasher.finalize());
        if self.has(&csum) {
            return Ok(csum);
        }
        self.persist(tmp, &csum)
            .map_err(|e| write_error(&csum, &path, e))?;
        Ok(csum)
    }

    /// Whether the repository or the running transaction has object `csum` already.
    fn has(&self, csum: &str) -> bool {
        let (sub, name) = object_name(csum);
        self.objects.join(sub).join(&name).exists() || self.staging.join(sub).join(&name).exists()
    }

    /// A new temporary file beside the staging directory's two-letter directories (which are
    /// all that committing the transaction renames).
    fn temp_object(&self) -> io::Result<tempfile::NamedTempFile> {
        tempfile::Builder::new()
            .prefix("ocitree-obj")
            .permissions(std::os::unix::fs::PermissionsExt::from_mode(0o644))
            .tempfile_in(&self.staging)
    }

    /// Moves the written `tmp` into the staging directory as object `csum`, if the file
    /// system keeps its reserve ([`ArchiveStore::check_reserve`]) with it written.
    fn persist(&self, tmp: tempfile::NamedTempFile, csum: &str) -> io::Result<()> {
        self.check_reserve()?;
        let (sub, name) = object_name(csum);
        let dest_dir = self.staging.join(sub);
        match std::fs::create_dir(&dest_dir) {
            Err(e) if e.kind() != io::ErrorKind::AlreadyExists => return Err(e),
            _ => {}
        }
        match tmp.persist_noclobber(dest_dir.join(name)) {
            Ok(_) => Ok(()),
            // Another writer thread stored the same object meanwhile.
            Err(e) if e.error.kind() == io::ErrorKind::AlreadyExists => Ok(()),
            Err(e) => Err(e.error),
        }
    }
}

/// A writer that checks the repository's reserve ([`ArchiveStore::check_reserve`]) every
/// [`ReserveKept::EVERY`] bytes written through it.
struct ReserveKept<'a, W> {
    store: &'a ArchiveStore,
    out: W,
    unchecked: u64,
}

impl<W> ReserveKept<'_, W> {
    const EVERY: u64 = 32 << 20;
}

impl<W: Write> Write for ReserveKept<'_, W> {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        if self.unchecked >= Self::EVERY {
            self.store.check_reserve()?;
            self.unchecked = 0;
        }
        let n = self.out.write(buf)?;
        self.unchecked += n as u64;
        Ok(n)
    }

    fn flush(&mut self) -> io::Result<()> {
        self.out.flush()
    }
}

impl ArchiveStore {
    /// Whether the file system still has the repository's reserve free, counted as libostree
    /// counts it: the blocks free to root when running as root, else those free to users.
    /// Checked again for every object (the free space of a file system shared with other
    /// writers changes under a running import).
    ///
    /// # Errors
    /// Less is free ([`io::ErrorKind::StorageFull`]), or the file system cannot be asked.
    fn check_reserve(&self) -> io::Result<()> {
        if self.reserve == 0 {
            return Ok(());
        }
        let free = crate::repo::free_space(&self.staging)?;
        if free < self.reserve {
            return Err(io::Error::new(
                io::ErrorKind::StorageFull,
                format!(
                    "the repository's min-free-space reserve ({} bytes, core.min-free-space-size \
                     or -percent) would be exceeded: {free} bytes left",
                    self.reserve
                ),
            ));
        }
        Ok(())
    }
}

/// The two-letter directory and file name of archive object `csum`.
fn object_name(csum: &str) -> (&str, String) {
    let (sub, rest) = csum.split_at(2);
    (sub, format!("{rest}.filez"))
}

fn write_error(csum: &str, path: &str, e: io::Error) -> LayerError {
    LayerError::Read(io::Error::new(
        e.kind(),
        format!("writing object {csum} for {path}: {e}"),
    ))
}

/// `header` followed by the raw deflate stream of `data` (a file object is at most
/// [`super::writer::INLINE_MAX`] bytes: memory stays bounded).
fn compress(z: &mut Compressor, header: Vec<u8>, data: &[u8]) -> io::Result<Vec<u8>> {
    let mut out = header;
    let start = out.len();
    out.resize(start + z.deflate_compress_bound(data.len()), 0);
    let n = z
        .deflate_compress(data, &mut out[start..])
        .map_err(|e| io::Error::other(format!("deflate: {e:?}")))?;
    out.truncate(start + n);
    Ok(out)
}

/// The archive object header: `(tuuuusa(ayay))` (size, uid, gid, mode, rdev, symlink target,
/// xattrs; integers big-endian) after its big-endian u32 length and 4 bytes of padding.
fn header(size: u64, uid: u32, gid: u32, mode: u32, xattrs: &glib::Variant) -> Vec<u8> {
    use glib::variant::ToVariant;
    let v = glib::Variant::tuple_from_iter([
        size.to_be().to_variant(),
        uid.to_be().to_variant(),
        gid.to_be().to_variant(),
        mode.to_be().to_variant(),
        0u32.to_variant(),
        "".to_variant(),
        xattrs.clone(),
    ]);
    let mut out = Vec::with_capacity(8 + v.size());
    out.extend_from_slice(&(v.size() as u32).to_be_bytes());
    out.extend_from_slice(&[0u8; 4]);
    out.extend_from_slice(v.data());
    out
}

/// The staging directory in `tmp` whose lock file (`staging-…-lock`) this process has open:
/// the one its transaction writes to. `None` unless there is exactly one.
fn held_staging_dir(tmp: &Path) -> Option<PathBuf> {
    let mut found = None;
    for fd in std::fs::read_dir("/proc/self/fd").ok()?.flatten() {
        let Ok(target) = std::fs::read_link(fd.path()) else {
            continue;
        };
        if target.parent() != Some(tmp) {
            continue;
        }
        let Some(name) = target.file_name().and_then(|n| n.to_str()) else {
            continue;
        };
        let Some(dir) = name
            .strip_prefix(crate::repo::staging::STAGING_PREFIX)
            .and_then(|rest| rest.strip_suffix("-lock"))
        else {
            continue;
        };
        let dir = tmp.join(format!("{}{dir}", crate::repo::staging::STAGING_PREFIX));
        match &found {
            Some(f) if *f != dir => return None,
            _ => found = Some(dir),
        }
    }
    found.filter(|d: &PathBuf| d.is_dir())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::entries::{Xattrs, xattrs};
    use crate::layer::object::{S_IFREG, content_checksum};
    use ostree::gio;

    /// Objects written here are the ones libostree writes: `ostree fsck`-equivalent
    /// (libostree reads and checksums each back) and the same checksums as its own writes.
    #[test]
    fn objects_read_back_through_libostree() {
        let dir = tempfile::tempdir().unwrap();
        let repo = Repo::new_for_path(dir.path());
        repo.create(RepoMode::Archive, gio::Cancellable::NONE)
            .unwrap();
        repo.prepare_transaction(gio::Cancellable::NONE).unwrap();
        let store = ArchiveStore::find(&repo).expect("the transaction's staging directory");
        assert_eq!(store.level, DEFAULT_LEVEL);
        let x: Xattrs = vec![(b"user.a".to_vec(), b"v".to_vec())];
        let cases: [(u32, u32, u32, Xattrs, Vec<u8>); 3] = [
            (0, 0, 0o644, vec![], vec![]),
            (1000, 50, 0o4755, x, b"#!/bin/sh\n".to_vec()),
            (
                7,
                8,
                0o600,
                vec![],
                (0..200_000u32).map(|i| (i % 251) as u8).collect(),
            ),
        ];
        let mut sums = Vec::new();
        for (uid, gid, perm, x, data) in cases {
            let xv = xattrs::to_variant(&x);
            let csum = content_checksum(uid, gid, S_IFREG | perm, &xv, &data);
            let job = FileObject {
                csum: csum.clone(),
                path: "f".into(),
                uid,
                gid,
                mode: S_IFREG | perm,
                xattrs: xv,
                data: data.clone(),
            };
            let mut z = store.compressor();
            store.write(&mut z, &job).unwrap();
            store.write(&mut z, &job).unwrap();
            sums.push((csum, data));
        }
        repo.commit_transaction(gio::Cancellable::NONE).unwrap();
        for (csum, data) in sums {
            let (input, _, _) = repo.load_file(&csum, gio::Cancellable::NONE).unwrap();
            let mut got = Vec::new();
            std::io::Read::read_to_end(
                &mut ostree::gio::prelude::InputStreamExtManual::into_read(input.unwrap()),
                &mut got,
            )
            .unwrap();
            assert_eq!(got, data);
            // libostree checks the object against its checksum.
            repo.fsck_object(ostree::ObjectType::File, &csum, gio::Cancellable::NONE)
                .unwrap();
        }
    }
}

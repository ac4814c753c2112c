//! Single OSTree objects: the checksum of a file object as libostree computes it, and the
//! writes of one file object (under a checksum already known) or one dirmeta object. The
//! layer's streaming object writer and its writer threads both build on these.

use ostree::{ObjectType, Repo, gio, glib};

use crate::entries::{Entry, Xattrs, xattrs};
use crate::error::LayerError;

/// File type bits of a regular file's mode.
pub const S_IFREG: u32 = 0o100000;
const S_IFDIR: u32 = 0o040000;

/// One buffered regular file whose object checksum is already known.
#[derive(Debug)]
pub struct FileObject {
    /// The object checksum ([`content_checksum`]).
    pub csum: String,
    /// The entry path, for errors.
    pub path: String,
    /// Owner.
    pub uid: u32,
    /// Group.
    pub gid: u32,
    /// `S_IFREG` and permission bits.
    pub mode: u32,
    /// The xattrs variant (`a(ayay)`).
    pub xattrs: glib::Variant,
    /// The file content.
    pub data: Vec<u8>,
}

/// Stores a buffered file under its precomputed checksum (`write_content_trusted`).
///
/// # Errors
/// libostree fails.
pub fn write_trusted(repo: &Repo, job: FileObject) -> Result<(), LayerError> {
    let err = |op| {
        let path = job.path.clone();
        move |cause| LayerError::Ostree { path, op, cause }
    };
    let info = file_info(job.uid, job.gid, job.mode, job.data.len() as u64);
    let input = gio::MemoryInputStream::from_bytes(&glib::Bytes::from_owned(job.data));
    let (stream, len) = ostree::raw_file_to_content_stream(
        &input,
        &info,
        Some(&job.xattrs),
        gio::Cancellable::NONE,
    )
    .map_err(err("preparing file object"))?;
    repo.write_content_trusted(&job.csum, &stream, len, gio::Cancellable::NONE)
        .map_err(err("writing file"))?;
    Ok(())
}

pub(crate) fn file_info(uid: u32, gid: u32, mode: u32, size: u64) -> gio::FileInfo {
    let info = gio::FileInfo::new();
    info.set_file_type(gio::FileType::Regular);
    info.set_size(size as i64);
    info.set_attribute_uint32("unix::uid", uid);
    info.set_attribute_uint32("unix::gid", gid);
    info.set_attribute_uint32("unix::mode", mode);
    info
}

/// The OSTree checksum of a regular file object: SHA-256 over the size-prefixed file header
/// (big-endian u32 length, 4 bytes of padding, then the `(uuuusa(ayay))` variant: uid, gid,
/// mode big-endian, rdev 0, no symlink target, xattrs) followed by the content — what
/// `ostree_checksum_file_from_input()` computes.
pub fn content_checksum(
    uid: u32,
    gid: u32,
    mode: u32,
    xattrs: &glib::Variant,
    data: &[u8],
) -> String {
    use sha2::Digest as _;
    let mut h = content_hasher(uid, gid, mode, xattrs);
    h.update(data);
    hex::encode(h.finalize())
}

/// [`content_checksum`]'s hasher after the header: feed it the content, then finalize.
pub fn content_hasher(uid: u32, gid: u32, mode: u32, xattrs: &glib::Variant) -> sha2::Sha256 {
    use glib::variant::ToVariant;
    use sha2::Digest as _;
    let header = glib::Variant::tuple_from_iter([
        uid.to_be().to_variant(),
        gid.to_be().to_variant(),
        mode.to_be().to_variant(),
        0u32.to_variant(),
        "".to_variant(),
        xattrs.clone(),
    ]);
    let mut h = sha2::Sha256::new();
    h.update((header.size() as u32).to_be_bytes());
    h.update([0u8; 4]);
    h.update(header.data());
    h
}

/// The error for a tar stream that ends after `got` of `entry`'s bytes.
pub fn short_read(entry: &Entry, got: u64) -> LayerError {
    LayerError::Read(std::io::Error::new(
        std::io::ErrorKind::UnexpectedEof,
        format!(
            "entry {:?}: tar stream ends after {got} of {} bytes",
            entry.raw_path, entry.size
        ),
    ))
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

#[cfg(test)]
mod tests {
    use super::*;
    use ostree::RepoMode;

    /// Our checksum must be libostree's, or `write_content_trusted` would store objects under
    /// wrong names (fsck would catch it; imports would not).
    #[test]
    fn content_checksum_matches_libostree() {
        let dir = tempfile::tempdir().unwrap();
        let repo = Repo::new_for_path(dir.path());
        repo.create(RepoMode::BareUser, gio::Cancellable::NONE)
            .unwrap();
        let cases: [(u32, u32, u32, Xattrs, &[u8]); 4] = [
            (0, 0, 0o644, vec![], b""),
            (1000, 50, 0o4755, vec![], b"#!/bin/sh\n"),
            (
                0,
                0,
                0o600,
                vec![
                    (b"user.a".to_vec(), b"\x00\xff".to_vec()),
                    (b"user.b".to_vec(), b"v".to_vec()),
                ],
                b"data",
            ),
            (
                65534,
                4_000_000,
                0o1777,
                vec![(b"security.capability".to_vec(), vec![1, 0, 0, 2])],
                &[7u8; 70000],
            ),
        ];
        for (uid, gid, perm, x, data) in cases {
            let v = xattrs::to_variant(&x);
            let theirs = repo
                .write_regfile_inline(
                    None,
                    uid,
                    gid,
                    S_IFREG | perm,
                    Some(&v),
                    data,
                    gio::Cancellable::NONE,
                )
                .unwrap();
            assert_eq!(
                content_checksum(uid, gid, S_IFREG | perm, &v, data),
                theirs.as_str()
            );
        }
    }
}
